package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

func TestSecretScopeServesItsNamespacesOnly(t *testing.T) {
	scope := SecretScope{"centaur-system", "team-a"}
	if !scope.Serves("team-a") || scope.Serves("team-b") {
		t.Errorf("Serves: team-a %v, team-b %v", scope.Serves("team-a"), scope.Serves("team-b"))
	}
	if !(SecretScope{"*"}).Serves("anything") {
		t.Error("* does not serve every namespace")
	}
	byObject := scope.CacheOptions()
	if len(byObject) != 1 {
		t.Fatalf("CacheOptions() = %v, want the Secret's namespaces", byObject)
	}
	for obj, cfg := range byObject {
		if _, ok := obj.(*corev1.Secret); !ok || len(cfg.Namespaces) != 2 {
			t.Errorf("the cache restricts %T to %v", obj, cfg.Namespaces)
		}
	}
	if (SecretScope{"*"}).CacheOptions() != nil {
		t.Error("* restricts the cache")
	}
}

func TestAnEndpointOutsideTheScopeSaysSecretNotReadableWithoutReadingIt(t *testing.T) {
	r := &WebhookEndpointReconciler{SecretScope: SecretScope{"centaur-system"}, Secrets: nil}
	value, problem, err := r.resolveSecret(context.Background(), "team-b", workflowsv1alpha1.SecretKeyRef{Name: "hook", Key: "secret"}, 0)
	if err != nil || value != nil || problem == nil || problem.reason != workflowsv1alpha1.ReasonSecretNotReadable {
		t.Fatalf("resolveSecret = %q, %+v, %v; want SecretNotReadable (a nil reader proves nothing was read)", value, problem, err)
	}
}
