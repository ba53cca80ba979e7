package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

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

// TestReadSecretSaysWhatToFix checks the one Secret reader of endpoints, declared webhooks and
// agents: the values in key order, and for each problem its reason and the fix it states.
func TestReadSecretSaysWhatToFix(t *testing.T) {
	reader := fake.NewClientBuilder().WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "hook"},
			Data: map[string][]byte{"secret": []byte(" s3cret\n"), "previous-secret": []byte("old"), "blank": []byte(" \n")}},
	).Build()
	ref := func(name string, keys ...string) secretRef {
		return secretRef{secret: types.NamespacedName{Namespace: "team-a", Name: name}, keys: keys, field: "spec.auth.secretRefs[0]", value: "signing secret"}
	}
	for _, tc := range []struct {
		ref             secretRef
		values          int
		reason, message string
	}{
		{ref: ref("hook", "secret", "previous-secret"), values: 2},
		{ref: ref("hook", "secret", "previous-absent"), values: 1},
		{ref: ref("gone", "secret"), reason: workflowsv1alpha1.ReasonSecretNotFound,
			message: `Secret "gone" (spec.auth.secretRefs[0]) not found in namespace "team-a"; create it: kubectl create secret generic gone -n team-a --from-literal=secret=<signing secret>`},
		{ref: ref("hook", "absent"), reason: workflowsv1alpha1.ReasonSecretKeyMissing,
			message: `Secret "hook" (spec.auth.secretRefs[0]) in namespace "team-a" has no key "absent"; add the key or fix spec.auth.secretRefs[0].key`},
		{ref: ref("hook", "blank"), reason: workflowsv1alpha1.ReasonSecretKeyMissing,
			message: `key "blank" of Secret "hook" (spec.auth.secretRefs[0]) in namespace "team-a" is empty; put the signing secret there`},
	} {
		values, problem, err := SecretScope{"*"}.readSecret(context.Background(), reader, tc.ref)
		switch {
		case err != nil:
			t.Errorf("%v: %v", tc.ref, err)
		case tc.reason == "" && (problem != nil || len(values) != tc.values || string(values[0]) != "s3cret"):
			t.Errorf("%v: values %q, problem %+v; want %d values, the first trimmed", tc.ref, values, problem, tc.values)
		case tc.reason != "" && (problem == nil || problem.reason != tc.reason || problem.message != tc.message):
			t.Errorf("%v: problem %+v, want %s: %s", tc.ref, problem, tc.reason, tc.message)
		}
	}
}
