// Package deploycheck checks that the operator as an install deploys it works with the
// permissions that install gives it: the rendered manifests pass the API server's dry run, and
// the manager, run under the install's ServiceAccount (impersonated), does its work without one
// forbidden request. Its tests check config/default; internal/chartcheck runs the same check on
// the Helm chart (charts/centaur-workflows).
package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	apiyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
)

// operatorNamespace and serviceAccount are what config/default deploys, and what the chart
// deploys as release "centaur" in centaur-system.
const (
	operatorNamespace = "centaur-system"
	serviceAccount    = "system:serviceaccount:centaur-system:centaur-controller-manager"
)

// Install is what one way of installing the operator renders, as CheckManager runs it.
type Install struct {
	// Name says where the objects come from in messages: "config/default", "the chart".
	Name string
	// Objects are applied in order, after a dry run of all of them.
	Objects []*unstructured.Unstructured
	// Namespaces are created first, as `helm install --create-namespace` does.
	Namespaces []string
	// ManagerArgs are the manager's flags besides its listeners (which the test picks), the
	// leader election namespace and the workflow directories.
	ManagerArgs []string
	// Applied, when set, runs once everything is applied, before the manager starts.
	Applied func(ctx context.Context, t *testing.T, admin client.Client)
}

// CheckManager starts a test API server, dry-runs and then applies the install's objects, and
// runs the manager impersonating its ServiceAccount (centaur-controller-manager in
// centaur-system) through work that touches every permission: runs, a definition, a webhook
// endpoint with its Secret, a schedule, agent turns, the admission policy, the delivery ledger
// and a console sign-out. Any forbidden request fails the test.
func CheckManager(t *testing.T, in Install) {
	t.Helper()
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Stop() }()
	admin, err := client.New(cluster.Config(), client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range in.Namespaces {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	t.Logf("every object %s renders passes the API server's dry run, then is applied", in.Name)
	for _, dryRun := range []bool{true, false} {
		for _, obj := range in.Objects {
			if err := Apply(ctx, admin, obj, dryRun); err != nil {
				t.Fatalf("apply %s's %s %s (dry run %v): %v", in.Name, obj.GetKind(), obj.GetName(), dryRun, err)
			}
		}
	}
	if in.Applied != nil {
		in.Applied(ctx, t, admin)
	}

	bin := filepath.Join(t.TempDir(), "manager")
	if err := testcluster.Build(ctx, ".", bin, false); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	proc, err := testcluster.StartManagerProcess(testcluster.ManagerProcessOptions{
		Binary: bin, Kubeconfig: impersonatingKubeconfig(t, cluster), Output: io.MultiWriter(logs, testWriter{t}),
		Env: []string{"POD_NAMESPACE=" + operatorNamespace},
		Args: append(append([]string{}, in.ManagerArgs...),
			"--leader-election-namespace="+operatorNamespace, "--workflow-dirs="+filepath.Join(root, "workflows"),
			// exercise's endpoint claims its slug, so that it reads its Secret and gets Ready.
			"--webhook-slug-grants="+operatorNamespace+"=deploy-hook"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = proc.Stop(10 * time.Second) }()
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := proc.WaitReady(readyCtx); err != nil {
		t.Fatalf("the manager did not get ready under its ServiceAccount: %v\n%s", err, logs)
	}

	t.Log("work that touches every permission: runs, a definition, an endpoint with its Secret, a schedule, agent turns")
	exercise(ctx, t, admin)
	testenv.WaitFor(t, 60*time.Second, "the hello run to succeed and the definition to load", func() error {
		run := &workflowsv1alpha1.WorkflowRun{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: "default", Name: "deploy-hello"}, run); err != nil {
			return err
		}
		if run.Status.Phase != workflowsv1alpha1.PhaseSucceeded {
			return fmt.Errorf("phase %q, error %+v", run.Status.Phase, run.Status.Error)
		}
		def := &workflowsv1alpha1.WorkflowDefinition{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "deploy-greet"}, def); err != nil {
			return err
		}
		if def.Status.Revision == "" {
			return errors.New("the definition has no revision yet")
		}
		return nil
	})
	t.Log("an editor may not place runs on shards (the admission policy)")
	editorMayNotPlaceRuns(ctx, t, cluster, admin)
	t.Log("webhook runs deleted by their TTL and by kubectl reach the delivery ledger")
	deletedWebhookRunsReachTheLedger(ctx, t, cluster, admin)
	t.Log("a person signs in to the console and out, which records the sign-out for every replica")
	signInAndOut(ctx, t, admin, proc.Listeners.API)
	t.Log("the controllers' periodic work: the schedule's ticks, the endpoint's Secret, the agent's turn")
	testenv.WaitFor(t, 60*time.Second, "the schedule to start two runs, the endpoint to be Ready and the agent turn to get its backend", func() error {
		return periodicWorkDone(ctx, admin)
	})
	if proc.Exited() {
		t.Fatalf("the manager exited:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "starting manager") {
		t.Fatalf("the manager's log does not show it started, so it cannot show what was forbidden:\n%s", logs)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("the manager was refused something it needs: %s", line)
		}
	}
}

// Render runs kubectl's kustomize over config/<dir> and decodes every object.
func Render(t *testing.T, root, dir string) []*unstructured.Unstructured {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatal("kubectl renders config/default (kubectl kustomize): install kubectl")
	}
	out, err := exec.Command("kubectl", "kustomize", filepath.Join(root, "config", dir)).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/%s: %v", dir, err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatalf("kubectl kustomize config/%s: %v", dir, err)
	}
	return objs
}

// Decode reads every object of a stream of YAML documents (what kustomize or helm template
// print), skipping empty ones.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := apiyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}

// ManagerContainer is the manager container of the Deployment among objs, which from renders.
func ManagerContainer(t *testing.T, objs []*unstructured.Unstructured, from string) corev1.Container {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "manager" {
				return c
			}
		}
	}
	t.Fatalf("%s renders no Deployment with a manager container", from)
	return corev1.Container{}
}

// Apply server-side-applies obj as the deployer would (kubectl apply --server-side), or only
// dry-runs it; in a dry run, an object whose namespace is yet to be created passes.
func Apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured, dryRun bool) error {
	opts := []client.PatchOption{client.FieldOwner("deploycheck"), client.ForceOwnership}
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	err := c.Patch(ctx, obj.DeepCopy(), client.Apply, opts...)
	if dryRun && apierrors.IsNotFound(err) && obj.GetNamespace() != "" {
		return nil // its namespace is one of the objects; the real apply creates it first
	}
	return err
}

// impersonatingKubeconfig writes a kubeconfig whose admin user acts as the manager's
// ServiceAccount, so every request carries exactly the ServiceAccount's permissions.
func impersonatingKubeconfig(t *testing.T, cluster *testcluster.Cluster) string {
	t.Helper()
	raw, err := cluster.AdminKubeconfig("deployer")
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range kc.AuthInfos {
		auth.Impersonate = serviceAccount
		auth.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + operatorNamespace, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// exercise creates what makes every controller work.
func exercise(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "hook-secret"},
		StringData: map[string]string{"secret": "deploycheck-value"}}
	objs := []client.Object{
		secret,
		&workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-hello"},
			Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello", Input: &apiextensionsv1.JSON{Raw: []byte(`{"name": "Ada"}`)}}},
		&workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-report"},
			Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "fan_out", Input: &apiextensionsv1.JSON{Raw: []byte(`{"names": ["Ada", "Grace"]}`)}}},
		&workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "deploy-greet"},
			Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: "WORKFLOW_NAME = \"deploy_greet\"\ndef handler(inp, ctx):\n    return ctx.step(\"s\", lambda: 1)\n"}},
		&workflowsv1alpha1.WebhookEndpoint{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: "deploy-hook"},
			Spec: workflowsv1alpha1.WebhookEndpointSpec{Slug: "deploy-hook", WorkflowName: "hello", Provider: workflowsv1alpha1.ProviderGitHub,
				Auth: &workflowsv1alpha1.WebhookAuth{SecretRefs: []workflowsv1alpha1.SecretKeyRef{{Name: "hook-secret", Key: "secret"}}}}},
		&workflowsv1alpha1.WorkflowSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-hourly"},
			Spec: workflowsv1alpha1.WorkflowScheduleSpec{Schedule: "@every 2s", WorkflowName: "hello", Input: &apiextensionsv1.JSON{Raw: []byte(`{"name": "Ada"}`)}}},
		&workflowsv1alpha1.AgentRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-turn"},
			Spec: workflowsv1alpha1.AgentRunSpec{Prompt: "hello"}},
		&workflowsv1alpha1.WorkflowEvent{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-event"},
			Spec: workflowsv1alpha1.WorkflowEventSpec{Type: "deploy.checked", CorrelationID: "x"}},
	}
	for _, obj := range objs {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// periodicWorkDone says what of exercise's periodic work the manager has not done yet: two
// ticks of the schedule (each a run it created and a status it wrote), the endpoint's
// readiness (its Secret read) and the agent turn's backend (the agents' ConfigMap read; with
// none configured the turn stays Pending for an external runtime). Until then, a clean log proves
// nothing about the permissions that work needs.
func periodicWorkDone(ctx context.Context, c client.Client) error {
	var runs workflowsv1alpha1.WorkflowRunList
	if err := c.List(ctx, &runs, client.InNamespace("default"), client.MatchingLabels{workflowsv1alpha1.LabelSchedule: "deploy-hourly"}); err != nil {
		return err
	}
	schedule := &workflowsv1alpha1.WorkflowSchedule{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "deploy-hourly"}, schedule); err != nil {
		return err
	}
	if len(runs.Items) < 2 || schedule.Status.LastScheduleTime == nil {
		return fmt.Errorf("the schedule started %d runs (last schedule time %v)", len(runs.Items), schedule.Status.LastScheduleTime)
	}
	endpoint := &workflowsv1alpha1.WebhookEndpoint{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: "deploy-hook"}, endpoint); err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(endpoint.Status.Conditions, workflowsv1alpha1.ConditionReady) {
		return fmt.Errorf("the endpoint is not Ready: %+v", endpoint.Status.Conditions)
	}
	turn := &workflowsv1alpha1.AgentRun{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "deploy-turn"}, turn); err != nil {
		return err
	}
	if turn.Status.Backend == "" {
		return fmt.Errorf("the agent turn has no backend yet (phase %q)", turn.Status.Phase)
	}
	return nil
}

// editorMayNotPlaceRuns binds a user to the WorkflowRun editor role in default and checks that
// config/policy refuses them the shard and drain labels, on create and on update, and the label
// that marks a webhook's runs, while the rest of a run's metadata stays theirs.
func editorMayNotPlaceRuns(ctx context.Context, t *testing.T, cluster *testcluster.Cluster, admin client.Client) {
	t.Helper()
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploycheck-editor"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "centaur-workflowrun-editor-role"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "deploycheck-editor"}}}
	if err := admin.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	cfg := cluster.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "deploycheck-editor"}
	editor, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	refused := func(err error) error {
		if err == nil || !apierrors.IsForbidden(err) && !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "only the operator sets the labels") {
			return fmt.Errorf("want the policy's refusal, got %v", err)
		}
		return nil
	}
	testenv.WaitFor(t, 30*time.Second, "the policy to refuse an editor's shard label", func() error {
		run := &workflowsv1alpha1.WorkflowRun{}
		if err := editor.Get(ctx, client.ObjectKey{Namespace: "default", Name: "deploy-hello"}, run); err != nil {
			return err
		}
		run.Labels = map[string]string{workflowsv1alpha1.LabelShard: "some-replica"}
		return refused(editor.Update(ctx, run))
	})
	pinned := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-pinned",
		Labels: map[string]string{workflowsv1alpha1.LabelDrain: "true"}}, Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello"}}
	if err := refused(editor.Create(ctx, pinned)); err != nil {
		t.Error("create with a drain label:", err)
	}
	forged := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-forged",
		Labels: map[string]string{workflowsv1alpha1.LabelWebhook: "github-issue-triage"}}, Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello"}}
	if err := editor.Create(ctx, forged); err == nil || !strings.Contains(err.Error(), "only the operator sets the label workflows.centaur.dev/webhook") {
		t.Errorf("create with a webhook label: want the policy's refusal, got %v", err)
	}
	keyed := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deploy-keyed",
		Labels: map[string]string{workflowsv1alpha1.LabelTriggerKey: "0123456789abcdef0123456789abcdef"}}, Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello"}}
	if err := editor.Create(ctx, keyed); err == nil || !strings.Contains(err.Error(), "only the operator sets the label workflows.centaur.dev/trigger-key") {
		t.Errorf("create with a trigger-key label: want the policy's refusal, got %v", err)
	}
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := editor.Get(ctx, client.ObjectKey{Namespace: "default", Name: "deploy-hello"}, run); err != nil {
		t.Fatal(err)
	}
	struck := run.DeepCopy()
	struck.Annotations = map[string]string{workflowsv1alpha1.AnnotationCrashStrikes: "0"}
	if err := editor.Update(ctx, struck); err == nil || !strings.Contains(err.Error(), "only the operator sets the annotation workflows.centaur.dev/crash-strikes") {
		t.Errorf("an editor's crash strikes: want the policy's refusal, got %v", err)
	}
	if run.Labels == nil { // with --sharding the run carries its shard label, which stays
		run.Labels = map[string]string{}
	}
	run.Labels["team"] = "deploycheck"
	if err := editor.Update(ctx, run); err != nil {
		t.Errorf("an editor's own label was refused: %v", err)
	}
}

// testWriter writes the manager's output into the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
