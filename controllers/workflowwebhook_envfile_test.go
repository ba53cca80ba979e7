package controllers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
)

// fileHookSlug is the slug of the webhook whose secret these tests keep in a file.
const fileHookSlug = "file-hook"

func TestAWebhookSecretReadFromAFileIsReReadWhenTheFileChanges(t *testing.T) {
	dir := t.TempDir()
	current, previous := filepath.Join(dir, "secret"), filepath.Join(dir, "previous-secret")
	env := map[string]string{"FILE_HOOK_SECRET": "", "FILE_HOOK_SECRET_FILE": current, "FILE_HOOK_SECRET_PREVIOUS_FILE": previous}
	r := fileHookReconciler(t, "FILE_HOOK_SECRET", env)

	writeFile(t, current, "first-secret\n")
	result := reconcileFileHook(t, r)
	if result.RequeueAfter != time.Second {
		t.Errorf("RequeueAfter = %v, want the reconciler's EnvSecretReread (1s): nothing watches a file", result.RequeueAfter)
	}
	wantSecrets(t, r.Routes, "first-secret")

	t.Log("the kubelet updates the mounted Secret: the new secret, and the old one as its rotation partner")
	writeFile(t, current, "second-secret")
	writeFile(t, previous, "  first-secret  ")
	reconcileFileHook(t, r)
	wantSecrets(t, r.Routes, "second-secret", "first-secret")

	t.Log("the rotation ends: the previous key is removed from the Secret, so its file disappears")
	if err := os.Remove(previous); err != nil {
		t.Fatal(err)
	}
	reconcileFileHook(t, r)
	wantSecrets(t, r.Routes, "second-secret")

	t.Log("a value in the variable itself wins over the file")
	env["FILE_HOOK_SECRET"] = "from-the-environment"
	reconcileFileHook(t, r)
	wantSecrets(t, r.Routes, "from-the-environment")
}

func TestAMissingOrEmptySecretFileIsSecretNotFoundNamingTheFile(t *testing.T) {
	dir := t.TempDir()
	current := filepath.Join(dir, "secret")
	env := map[string]string{"FILE_HOOK_SECRET_FILE": current}
	r := fileHookReconciler(t, "FILE_HOOK_SECRET", env)

	for _, c := range []struct{ setup, want string }{
		{"missing", "the file " + current + " that the manager's environment variable FILE_HOOK_SECRET_FILE names cannot be read"},
		{"empty", "the file " + current + " that the manager's environment variable FILE_HOOK_SECRET_FILE names is empty"},
		{"unset", "the manager's environment variable FILE_HOOK_SECRET is not set, nor FILE_HOOK_SECRET_FILE"},
	} {
		switch c.setup {
		case "empty":
			writeFile(t, current, " \n")
		case "unset":
			delete(env, "FILE_HOOK_SECRET_FILE")
		}
		result := reconcileFileHook(t, r)
		route, _ := r.Routes.Lookup(fileHookSlug)
		if route.Ready || route.Reason != workflowsv1alpha1.ReasonSecretNotFound || !strings.Contains(route.Message, c.want) {
			t.Errorf("%s file: route ready %v, %s: %s; want SecretNotFound saying %q", c.setup, route.Ready, route.Reason, route.Message, c.want)
		}
		if result.RequeueAfter == 0 {
			t.Errorf("%s file: not read again; the file may appear once the Secret is mounted", c.setup)
		}
	}

	t.Log("the file appears: the route becomes Ready at the next read")
	env["FILE_HOOK_SECRET_FILE"] = current
	writeFile(t, current, "now-there")
	reconcileFileHook(t, r)
	wantSecrets(t, r.Routes, "now-there")
}

func TestOnlyWebhooksWithSecretsInTheEnvironmentAreReadAgainOnATimer(t *testing.T) {
	r := &WorkflowWebhookReconciler{OperatorNamespace: "centaur-system"}
	for ref, want := range map[string]time.Duration{"GITHUB_WEBHOOK_SECRET": DefaultEnvSecretRereadInterval, "github-webhook/secret": 0, "": 0} {
		w := catalog.Webhook{Spec: durable.WebhookSpec{Slug: "hook", Auth: durable.WebhookAuth{Scheme: "github", SecretRef: ref}}, Entry: catalog.Entry{Source: catalog.SourceGo}}
		if got := r.rereadAfter(w); got != want {
			t.Errorf("secret_ref %q: read again after %v, want %v (Secrets are watched)", ref, got, want)
		}
	}
}

// fileHookReconciler serves one Go workflow whose webhook names the environment variable ref,
// looked up in env.
func fileHookReconciler(t *testing.T, ref string, env map[string]string) *WorkflowWebhookReconciler {
	t.Helper()
	reg := engine.NewRegistry()
	hooked := durable.Define("file_hook", func(*durable.Context, map[string]any) (string, error) { return "", nil },
		durable.WithWebhook(durable.WebhookSpec{Slug: fileHookSlug, Provider: "github", Auth: durable.WebhookAuth{Scheme: "github", SecretRef: ref}}))
	if err := reg.Register(hooked); err != nil {
		t.Fatal(err)
	}
	return &WorkflowWebhookReconciler{
		Routes: routes.NewTable(), Catalog: catalog.New(reg, catalog.Options{}), CodeNamespace: "default", OperatorNamespace: "centaur-system",
		Env: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		EnvSecretReread: time.Second, served: map[string]servedRoute{},
	}
}

// reconcileFileHook reconciles the file hook's slug.
func reconcileFileHook(t *testing.T, r *WorkflowWebhookReconciler) ctrl.Result {
	t.Helper()
	result, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: fileHookSlug}})
	if err != nil {
		t.Fatal(err)
	}
	return result
}

// wantSecrets checks that the file hook's route is Ready with exactly want.
func wantSecrets(t *testing.T, table *routes.Table, want ...string) {
	t.Helper()
	route, ok := table.Lookup(fileHookSlug)
	if !ok || !route.Ready {
		t.Fatalf("route served %v, ready %v (%s: %s); want Ready", ok, route.Ready, route.Reason, route.Message)
	}
	var got []string
	for _, s := range route.Secrets {
		got = append(got, string(s))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("secrets %q, want %q", got, want)
	}
}

// writeFile replaces the file at path with content.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
