package controllers

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
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
func (s SecretScope) notServed(namespace string) *finding {
	return &finding{workflowsv1alpha1.ReasonSecretNotReadable, fmt.Sprintf(
		"the manager reads Secrets only in the namespaces it serves (%s); ask the operator to add %s to --secret-namespaces and "+
			"bind the ClusterRole centaur-secret-reader there (kubectl create rolebinding centaur-secret-reader -n %s "+
			"--clusterrole=centaur-secret-reader --serviceaccount=<operator namespace>:centaur-controller-manager)",
		strings.Join(s, ", "), namespace, namespace)}
}

// forbidden is the problem of a Secret the API server would not let the manager read.
func forbidden(namespace string, err error) *finding {
	if !apierrors.IsForbidden(err) {
		return nil
	}
	return &finding{workflowsv1alpha1.ReasonSecretNotReadable, fmt.Sprintf(
		"the manager may not read Secrets in namespace %s: bind the ClusterRole centaur-secret-reader there "+
			"(kubectl create rolebinding centaur-secret-reader -n %s --clusterrole=centaur-secret-reader "+
			"--serviceaccount=<operator namespace>:centaur-controller-manager)", namespace, namespace)}
}

// secretRef is a value the manager keeps in a Secret: a webhook endpoint's or a declared
// webhook's signing secret, an agent's API key. readSecret reads every one of them, so that
// each says the same things when it cannot be read.
type secretRef struct {
	// secret is the Secret's namespace and name.
	secret types.NamespacedName
	// keys hold the value: the first the current one, any other a rotation partner that may
	// be absent. A problem names the first.
	keys []string
	// field says where the reference is written (for example spec.auth.secretRefs[0]), shown
	// beside the Secret's name; empty for a conventional Secret.
	field string
	// value says what the value is, for the `kubectl create secret` to run: "signing secret",
	// "API key".
	value string
}

// readSecret reads ref's values in the order of its keys, each trimmed of surrounding
// whitespace (a Secret made from a file usually ends with a newline nobody means to use),
// leaving out empty ones. When there is none it returns the problem to fix instead: the
// namespace is outside the scope or forbidden (with the RoleBinding to create), the Secret is
// missing (with the `kubectl create secret` to run), or its key is missing or empty. The error
// is for other failures of the API server.
func (s SecretScope) readSecret(ctx context.Context, reader client.Reader, ref secretRef) ([][]byte, *finding, error) {
	namespace, name := ref.secret.Namespace, ref.secret.Name
	if !s.Serves(namespace) {
		return nil, s.notServed(namespace), nil
	}
	where := ""
	if ref.field != "" {
		where = " (" + ref.field + ")"
	}
	var secret corev1.Secret
	if err := reader.Get(ctx, ref.secret, &secret); err != nil {
		if p := forbidden(namespace, err); p != nil {
			return nil, p, nil
		}
		if apierrors.IsNotFound(err) {
			return nil, &finding{workflowsv1alpha1.ReasonSecretNotFound, fmt.Sprintf(
				"Secret %q%s not found in namespace %q; create it: kubectl create secret generic %s -n %s --from-literal=%s=<%s>",
				name, where, namespace, name, namespace, ref.keys[0], ref.value)}, nil
		}
		return nil, nil, fmt.Errorf("read Secret %s: %w", ref.secret, err)
	}
	var values [][]byte
	present := false
	for _, k := range ref.keys {
		raw, ok := secret.Data[k]
		present = present || ok
		if v := bytes.TrimSpace(raw); len(v) > 0 {
			values = append(values, v)
		}
	}
	switch {
	case !present:
		fix := ""
		if ref.field != "" {
			fix = " or fix " + ref.field + ".key"
		}
		return nil, &finding{workflowsv1alpha1.ReasonSecretKeyMissing, fmt.Sprintf(
			"Secret %q%s in namespace %q has no key %q; add the key%s", name, where, namespace, ref.keys[0], fix)}, nil
	case len(values) == 0:
		return nil, &finding{workflowsv1alpha1.ReasonSecretKeyMissing, fmt.Sprintf(
			"key %q of Secret %q%s in namespace %q is empty; put the %s there", ref.keys[0], name, where, namespace, ref.value)}, nil
	}
	return values, nil, nil
}
