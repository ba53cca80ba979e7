package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// SecretScope is the set of namespaces whose Secrets the manager reads (--secret-namespaces):
// its own, and those an administrator adds and binds the ClusterRole centaur-secret-reader in.
// The process that answers the internet's webhooks never holds a cluster-wide read of Secrets;
// RBAC cannot narrow a list or watch by label, so namespaces are the scope. "*" means every
// namespace, for a single-tenant cluster (make dev).
type SecretScope []string

// Serves reports whether the manager reads Secrets in namespace.
func (s SecretScope) Serves(namespace string) bool {
	return slices.Contains(s, "*") || slices.Contains(s, namespace)
}

// CacheOptions restricts the manager's cache of Secrets (it watches their metadata only) to
// the scope's namespaces; nil when every namespace is served.
func (s SecretScope) CacheOptions() map[client.Object]cache.ByObject {
	if len(s) == 0 || slices.Contains(s, "*") {
		return nil
	}
	namespaces := make(map[string]cache.Config, len(s))
	for _, ns := range s {
		namespaces[ns] = cache.Config{}
	}
	return map[client.Object]cache.ByObject{&corev1.Secret{}: {Namespaces: namespaces}}
}

// notServed is the problem of a Secret in a namespace outside the scope.
func (s SecretScope) notServed(namespace string) *secretProblem {
	return &secretProblem{workflowsv1alpha1.ReasonSecretNotReadable, fmt.Sprintf(
		"the manager reads Secrets only in the namespaces it serves (%s); ask the operator to add %s to --secret-namespaces and "+
			"bind the ClusterRole centaur-secret-reader there (kubectl create rolebinding centaur-secret-reader -n %s "+
			"--clusterrole=centaur-secret-reader --serviceaccount=<operator namespace>:centaur-controller-manager)",
		strings.Join(s, ", "), namespace, namespace)}
}

// forbidden is the problem of a Secret the API server would not let the manager read.
func forbidden(namespace string, err error) *secretProblem {
	if !apierrors.IsForbidden(err) {
		return nil
	}
	return &secretProblem{workflowsv1alpha1.ReasonSecretNotReadable, fmt.Sprintf(
		"the manager may not read Secrets in namespace %s: bind the ClusterRole centaur-secret-reader there "+
			"(kubectl create rolebinding centaur-secret-reader -n %s --clusterrole=centaur-secret-reader "+
			"--serviceaccount=<operator namespace>:centaur-controller-manager)", namespace, namespace)}
}
