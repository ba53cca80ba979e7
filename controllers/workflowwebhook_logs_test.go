package controllers

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

func TestAWebhookWithoutItsSecretLogsAtErrorLevelThatItAnswers503UntilFixed(t *testing.T) {
	env := map[string]string{}
	r := fileHookReconciler(t, "FILE_HOOK_SECRET", env)
	ctx, lines := loggedContext()

	reconcileSlug(ctx, t, r, fileHookSlug)
	notServing := regexp.MustCompile(`"level":"error","ts":[0-9.e+]+,"msg":"workflow_webhook_not_serving".*"error":"/api/webhooks/file-hook answers 503 until this is fixed: ` +
		`the manager's environment variable FILE_HOOK_SECRET is not set, nor FILE_HOOK_SECRET_FILE; set FILE_HOOK_SECRET`)
	if !notServing.MatchString(lines.String()) {
		t.Errorf("no error-level workflow_webhook_not_serving naming the fix:\n%s", lines)
	}
	if !strings.Contains(lines.String(), `"msg":"workflow_webhook_registered"`) {
		t.Errorf("the route's first setting was not logged as workflow_webhook_registered:\n%s", lines)
	}

	t.Log("nothing changed: nothing is logged again")
	before := lines.String()
	reconcileSlug(ctx, t, r, fileHookSlug)
	if lines.String() != before {
		t.Errorf("an unchanged route was logged again:\n%s", strings.TrimPrefix(lines.String(), before))
	}

	t.Log("the fix is made: the route is registered Ready, and not_serving is not repeated")
	env["FILE_HOOK_SECRET"] = "now-set"
	reconcileSlug(ctx, t, r, fileHookSlug)
	after := strings.TrimPrefix(lines.String(), before)
	if !strings.Contains(after, `"msg":"workflow_webhook_registered"`) || !strings.Contains(after, `"ready":true`) || strings.Contains(after, "not_serving") {
		t.Errorf("after the fix, want workflow_webhook_registered ready=true only:\n%s", after)
	}
}

func TestAFileThatLosesASlugToAnotherFileLogsTheConflictNamingBoth(t *testing.T) {
	c := catalog.New(engine.NewRegistry(), catalog.Options{})
	c.SetFiles([]catalog.Entry{
		hookFile(t, "/app/overlay/org/workflows/alpha.star", "alpha", "shared-hook"),
		hookFile(t, "/app/overlay/configmap/workflows/beta.star", "beta", "shared-hook"),
	})
	r := &WorkflowWebhookReconciler{Routes: routes.NewTable(), Catalog: c, CodeNamespace: "centaur-system", OperatorNamespace: "centaur-system",
		served: map[string]servedRoute{}}
	ctx, lines := loggedContext()

	reconcileSlug(ctx, t, r, "shared-hook")
	conflict := regexp.MustCompile(`"level":"error","ts":[0-9.e+]+,"msg":"workflow_webhook_conflict".*"slug":"shared-hook".*` +
		`"file":"/app/overlay/configmap/workflows/beta.star","workflow":"beta","winner_file":"/app/overlay/org/workflows/alpha.star","winner_workflow":"alpha"`)
	if !conflict.MatchString(lines.String()) {
		t.Errorf("no workflow_webhook_conflict naming the losing and the winning file:\n%s", lines)
	}
	if route, _ := r.Routes.Lookup("shared-hook"); route.WorkflowName != "alpha" {
		t.Errorf("the slug serves %q; want alpha, the first file by workflow name", route.WorkflowName)
	}

	t.Log("logged once, not at every resync")
	reconcileSlug(ctx, t, r, "shared-hook")
	if n := strings.Count(lines.String(), "workflow_webhook_conflict"); n != 1 {
		t.Errorf("workflow_webhook_conflict logged %d times over two reconciles:\n%s", n, lines)
	}

	t.Log("the losing file renames its slug: no conflict is logged any more")
	c.SetFiles([]catalog.Entry{
		hookFile(t, "/app/overlay/org/workflows/alpha.star", "alpha", "shared-hook"),
		hookFile(t, "/app/overlay/configmap/workflows/beta.star", "beta", "beta-hook"),
	})
	before := lines.String()
	reconcileSlug(ctx, t, r, "shared-hook")
	reconcileSlug(ctx, t, r, "beta-hook")
	if after := strings.TrimPrefix(lines.String(), before); strings.Contains(after, "workflow_webhook_conflict") {
		t.Errorf("a conflict was logged after it was resolved:\n%s", after)
	}
}

// loggedContext is a context whose logger writes JSON lines, as the manager does in production,
// into the returned buffer.
func loggedContext() (context.Context, *testenv.LogBuffer) {
	lines := &testenv.LogBuffer{}
	return log.IntoContext(context.Background(), zap.New(zap.WriteTo(lines), zap.JSONEncoder())), lines
}

// reconcileSlug reconciles the declared webhook slug.
func reconcileSlug(ctx context.Context, t *testing.T, r *WorkflowWebhookReconciler, slug string) {
	t.Helper()
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Name: slug}}); err != nil {
		t.Fatal(err)
	}
}

// hookFile is a WORKFLOW_DIRS file at path whose workflow name declares the webhook slug.
func hookFile(t *testing.T, path, name, slug string) catalog.Entry {
	t.Helper()
	src := "WORKFLOW_NAME = \"" + name + "\"\nWEBHOOKS = [WebhookSpec(slug = \"" + slug + "\", auth = \"none\")]\ndef handler(inp, ctx):\n    return None\n"
	w, err := workflowfile.CompileBundle(workflowfile.Bundle{Origin: workflowfile.OriginDir, Entry: name + ".star", Files: map[string]string{name + ".star": src}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return catalog.Entry{Workflow: w, Revision: w.Revision(), File: path}
}
