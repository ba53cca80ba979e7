package chartcheck

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/manager"
)

// The hook that creates missing Secrets (templates/secrets-job.yaml), on by default.
const ensureSecrets = "centaur-ensure-secrets"

// hookObjects are the objects of the secrets hook, as chartOnly lists them.
var hookObjects = []string{
	"ServiceAccount " + namespace + "/" + ensureSecrets,
	"Role " + namespace + "/" + ensureSecrets,
	"RoleBinding " + namespace + "/" + ensureSecrets,
	"Job " + namespace + "/" + ensureSecrets,
}

// TestTheSecretsHookRunsEnsureSecretsLockedDown checks the rendered hook: four pre-install and
// pre-upgrade hooks deleted once they succeed, RBAC created before the Job, the Job running
// `manager --ensure-secrets` from the manager's image on the values' Secrets with the manager's
// pod security; and with secrets.create false nothing of it.
func TestTheSecretsHookRunsEnsureSecretsLockedDown(t *testing.T) {
	helm, root := helmAndRoot(t)
	objs := byKey(t, template(t, helm, root, ""))
	for _, key := range hookObjects {
		obj, ok := objs[key]
		if !ok {
			t.Errorf("no %s rendered", key)
			continue
		}
		a := obj.GetAnnotations()
		if a["helm.sh/hook"] != "pre-install,pre-upgrade" || a["helm.sh/hook-delete-policy"] != "before-hook-creation,hook-succeeded" {
			t.Errorf("%s: hook annotations %v", key, a)
		}
		weight, _ := strconv.Atoi(a["helm.sh/hook-weight"])
		jobWeight, _ := strconv.Atoi(objs["Job "+namespace+"/"+ensureSecrets].GetAnnotations()["helm.sh/hook-weight"])
		if obj.GetKind() != "Job" && weight >= jobWeight {
			t.Errorf("%s has hook weight %s, not below the Job's", key, a["helm.sh/hook-weight"])
		}
	}
	var job batchv1.Job
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs["Job "+namespace+"/"+ensureSecrets].Object, &job); err != nil {
		t.Fatal(err)
	}
	pod := job.Spec.Template.Spec
	c := container(t, pod, "ensure-secrets")
	if want := podSpec(t, template(t, helm, root, "")).Containers[0].Image; c.Image != want {
		t.Errorf("the hook runs image %s; want the manager's, %s", c.Image, want)
	}
	var o manager.Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	manager.BindFlags(fs, &o)
	if err := fs.Parse(c.Args); err != nil || !slices.Equal(c.Command, []string{"/manager"}) {
		t.Errorf("the hook's command %v %v: %v", c.Command, c.Args, err)
	}
	if !o.EnsureSecrets || o.APIKeysSecret != namespace+"/centaur-api-keys" || o.ConsoleSecret != namespace+"/centaur-console" {
		t.Errorf("the hook runs --ensure-secrets=%v on %s and %s", o.EnsureSecrets, o.APIKeysSecret, o.ConsoleSecret)
	}
	if pod.ServiceAccountName != ensureSecrets || pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("the hook's pod runs as %q, restart policy %s", pod.ServiceAccountName, pod.RestartPolicy)
	}
	ps, cs := pod.SecurityContext, c.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("the hook's pod security context %+v: want non-root and seccomp RuntimeDefault", ps)
	}
	if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil ||
		*cs.AllowPrivilegeEscalation || cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("the hook's container security context %+v: want a read-only root, no privilege escalation, ALL dropped", cs)
	}

	for key := range byKey(t, template(t, helm, root, "secrets: {create: false}")) {
		if slices.Contains(hookObjects, key) {
			t.Errorf("secrets.create false still renders %s", key)
		}
	}
}

// hookMayOnlyCreateSecrets asks the API server (the chart's default objects applied) what the
// hook's ServiceAccount may do with Secrets: create them in the release's namespace, and nothing
// else, there or elsewhere. Then it deletes the hook's objects, as Helm does once the hook
// succeeded (a Job's pod template cannot change: the next dry run of the release's hook with
// another image needs the old Job gone, as before-hook-creation makes it).
func hookMayOnlyCreateSecrets(ctx context.Context, t *testing.T, admin client.Client) {
	t.Helper()
	defer func() {
		for _, obj := range []client.Object{&batchv1.Job{}, &rbacv1.RoleBinding{}, &rbacv1.Role{}, &corev1.ServiceAccount{}} {
			obj.SetNamespace(namespace)
			obj.SetName(ensureSecrets)
			if err := admin.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
				t.Errorf("delete the hook's %T: %v", obj, err)
			}
		}
	}()
	user := "system:serviceaccount:" + namespace + ":" + ensureSecrets
	for _, c := range []struct {
		verb, ns string
		want     bool
	}{
		{"create", namespace, true},
		{"get", namespace, false},
		{"list", namespace, false},
		{"update", namespace, false},
		{"delete", namespace, false},
		{"create", "default", false},
	} {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: c.ns, Verb: c.verb, Resource: "secrets"},
		}}
		if err := admin.Create(ctx, review); err != nil {
			t.Fatal(err)
		}
		if got := review.Status.Allowed; got != c.want {
			t.Errorf("the secrets hook's ServiceAccount may %s Secrets in %s: %v; want %v (%s)", c.verb, c.ns, got, c.want,
				fmt.Sprint(review.Status.Reason, review.Status.EvaluationError))
		}
	}
}
