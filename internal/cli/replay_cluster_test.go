package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/cli"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/internal/testpython"
	"github.com/centaur-dev/workflow-operator/pyworker"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// shopV1 is the workflow the manager runs: 40 steps (more than the manager keeps open in
// status.journal, so most are sealed into segments), a result large enough to be stored out
// of line, a renamable step, then an hour's sleep. A run with "quick" returns at once.
const shopV1 = `WORKFLOW_NAME = "shop"

def handler(inp, ctx):
    if inp.get("quick"):
        return ctx.step("quick", lambda: "done")
    for i in range(40):
        ctx.step("s%d" % i, lambda: i)
    big = ctx.step("big", lambda: "x" * 6000)
    price = ctx.step("price", lambda: inp["qty"] * 3)
    ctx.sleep("cool_off", "1h")
    paid = ctx.wait_for_event("paid", "order.paid", correlation_id = inp["id"])
    return {"total": price, "paid": paid, "big": len(big)}
`

// pyShopV1 is a Python workflow the manager runs until it sleeps.
const pyShopV1 = `from api.workflow_engine import WorkflowContext

WORKFLOW_NAME = "py_shop"


async def handler(inp, ctx: WorkflowContext):
    price = await ctx.step("price", lambda: inp["qty"] * 3)
    await ctx.sleep("cool_off", "1h")
    return {"total": price}
`

// replayNamespace is where the test's runs live; replayOperatorNamespace keeps the revisions.
const (
	replayNamespace         = "shop"
	replayOperatorNamespace = "centaur-system"
)

// startRecordingCluster starts a control plane and a manager with the run controller over
// the WORKFLOW_DIRS dir, as manager.Run wires them; all stop when the test ends. It returns a
// client and the path of an admin kubeconfig.
func startRecordingCluster(t *testing.T, dir string) (client.Client, string) {
	t.Helper()
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	scheme := controllers.NewScheme()
	c, err := client.New(cluster.Config(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{replayNamespace, replayOperatorNamespace} {
		if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	mgr, err := ctrl.NewManager(cluster.Config(), testenv.ManagerOptions(scheme))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := testpython.Pool(pyworker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cat := controllers.NewWorkflowCatalog(mgr, engine.NewRegistry(), catalog.Options{OperatorNamespace: replayOperatorNamespace,
		Trusted: &workflowfile.Config{CheckSchedule: schedule.CheckDeclaration}, Python: testpython.Loader(pool)})
	dirs := &catalog.Dirs{Paths: []string{dir}, Catalog: cat}
	dirs.Load()
	if err := mgr.Add(dirs); err != nil {
		t.Fatal(err)
	}
	if _, err := controllers.Setup(mgr, controllers.Options{Workflows: cat, SecretScope: controllers.SecretScope{"*"}}); err != nil {
		t.Fatal(err)
	}
	stop := testenv.StartManager(mgr)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stop the manager: %v", err)
		}
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cluster.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	return c, kubeconfig
}

// startRecordedRun creates a run of workflow with input and waits until it reaches phase.
func startRecordedRun(t *testing.T, c client.Client, name, workflow, input string, phase workflowsv1alpha1.RunPhase) *workflowsv1alpha1.WorkflowRun {
	t.Helper()
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: replayNamespace, Name: name},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow, Input: &apiextensionsv1.JSON{Raw: []byte(input)}},
	}
	if err := c.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("run %s to reach %s", name, phase), func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(run), run); err != nil {
			return err
		}
		if run.Status.Phase != phase {
			return fmt.Errorf("phase %q (error %+v)", run.Status.Phase, run.Status.Error)
		}
		return nil
	})
	return run
}

// editShop writes a version of shopV1 into a directory of its own: each replace pair applied once.
func editShop(t *testing.T, replace ...string) string {
	t.Helper()
	source := shopV1
	for i := 0; i < len(replace); i += 2 {
		if !strings.Contains(source, replace[i]) {
			t.Fatalf("shopV1 has no %q", replace[i])
		}
		source = strings.Replace(source, replace[i], replace[i+1], 1)
	}
	path := filepath.Join(t.TempDir(), "shop.star")
	if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReplayChecksRunsRecordedInTheCluster(t *testing.T) {
	isolateCache(t)
	began := time.Now()
	dir := t.TempDir()
	testpython.WriteDir(t, dir, map[string]string{"shop.star": shopV1, "py_shop.py": pyShopV1})
	c, kubeconfig := startRecordingCluster(t, dir)
	first := startRecordedRun(t, c, "order-1", "shop", `{"id": "o-1", "qty": 40}`, workflowsv1alpha1.PhaseSleeping)
	startRecordedRun(t, c, "order-2", "shop", `{"id": "o-2", "qty": 7}`, workflowsv1alpha1.PhaseSleeping)
	quick := startRecordedRun(t, c, "order-3", "shop", `{"quick": true}`, workflowsv1alpha1.PhaseSucceeded)
	startRecordedRun(t, c, "py-order-1", "py_shop", `{"qty": 5}`, workflowsv1alpha1.PhaseSleeping)
	if h := first.Status.History; h == nil || h.SealedEntries == 0 || h.Payloads == 0 {
		t.Fatalf("the run sealed no segment or stored no payload, so the test would not read them: history %+v", h)
	}
	t.Logf("recorded in %s; order-1 pinned to %s, with %d entries sealed", time.Since(began).Round(time.Millisecond), first.Status.WorkflowRevision, first.Status.History.SealedEntries)
	cluster := []string{"--kubeconfig", kubeconfig, "--namespace", replayNamespace}

	for _, tc := range []struct {
		name   string
		file   string
		args   []string
		exit   int
		stdout []string
		stderr string // a substring of stderr
		// anyNamespace leaves --namespace out: the kubeconfig's namespace (default) holds no run.
		anyNamespace bool
	}{
		{name: "the recorded code, one run", file: filepath.Join(dir, "shop.star"), args: []string{"--run", "order-1"}, exit: cli.ExitOK,
			stdout: []string{"shop/order-1 (pinned to revision " + first.Status.WorkflowRevision + ", this file's): compatible: 43 of 43 entries in the same order; at sleep cool_off, sleeping in the recorded run"}},
		{name: "a compatible edit, every unfinished run",
			file: editShop(t, `inp["qty"] * 3`, `inp["qty"] * 3 + 1`, `    return {"total"`, "    ctx.step(\"receipt\", lambda: paid)\n    return {\"total\""),
			args: []string{"--all-running"}, exit: cli.ExitOK,
			stdout: []string{"shop/order-1 (pinned to revision " + first.Status.WorkflowRevision + "): compatible: 43 of 43", "shop/order-2 (pinned to revision " + first.Status.WorkflowRevision + "): compatible: 43 of 43"}},
		{name: "a renamed step", file: editShop(t, `ctx.step("price"`, `ctx.step("cost"`), args: []string{"--run", "order-1"}, exit: cli.ExitFailed,
			stdout: []string{"shop/order-1 (pinned to revision " + first.Status.WorkflowRevision + "): DIVERGES at entry 42: the journal recorded step price, the new code calls step cost at ", "shop.star:9:21 in handler", "ctx.get_version"}},
		{name: "reordered steps", file: editShop(t, "    big = ctx.step(\"big\", lambda: \"x\" * 6000)\n    price = ctx.step(\"price\", lambda: inp[\"qty\"] * 3)\n",
			"    price = ctx.step(\"price\", lambda: inp[\"qty\"] * 3)\n    big = ctx.step(\"big\", lambda: \"x\" * 6000)\n"),
			args: []string{"--all-running"}, exit: cli.ExitFailed,
			stdout: []string{"shop/order-1", "DIVERGES at entry 41: the journal recorded step big, the new code calls step price at ", "shop.star:8:21 in handler", "shop/order-2", "DIVERGES at entry 41"}},
		{name: "a new primitive before recorded ones", file: editShop(t, "    for i in range(40):", "    ctx.send_event(\"hello\", \"order.seen\", correlation_id = inp[\"id\"])\n    for i in range(40):"),
			args: []string{"--run", "order-2"}, exit: cli.ExitFailed,
			stdout: []string{"shop/order-2", "DIVERGES at entry 1: the journal recorded step s0, the new code calls event hello at ", "shop.star:6:19 in handler"}},
		{name: "a renamed step of a Python file", file: editPyShop(t), args: []string{"--all-running"}, exit: cli.ExitFailed,
			stdout: []string{"shop/py-order-1 (pinned to revision py-shop-", "DIVERGES at entry 1: the journal recorded step price, the new code calls step cost at ", "py_shop.py:7 in handler"}},
		{name: "every namespace", file: filepath.Join(dir, "shop.star"), args: []string{"--all-running", "-A"}, exit: cli.ExitOK, anyNamespace: true,
			stdout: []string{"shop/order-1 (pinned to revision " + first.Status.WorkflowRevision + ", this file's): compatible", "shop/order-2 ("}},
		{name: "a workflow without unfinished runs", file: editShop(t, `WORKFLOW_NAME = "shop"`, `WORKFLOW_NAME = "idle"`), args: []string{"--all-running"}, exit: cli.ExitOK,
			stderr: "no unfinished run of workflow idle: nothing to check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			args := append([]string{"replay", tc.file}, tc.args...)
			if tc.anyNamespace {
				args = append(args, "--kubeconfig", kubeconfig)
			} else {
				args = append(args, cluster...)
			}
			r := centaur(t, args...)
			t.Logf("centaur replay took %s\nstdout:\n%s\nstderr:\n%s", time.Since(start).Round(time.Millisecond), r.stdout, r.stderr)
			if r.exit != tc.exit {
				t.Fatalf("exit %d, want %d", r.exit, tc.exit)
			}
			rest := r.stdout
			for _, want := range tc.stdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order)", want)
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("stderr lacks %q", tc.stderr)
			}
			if strings.Contains(r.stdout, "order-3") {
				t.Fatal("a finished run was replayed")
			}
		})
	}

	t.Run("a run object as kubectl prints it", func(t *testing.T) {
		files := t.TempDir()
		asYAML := filepath.Join(files, "order-3.yaml")
		writeRunObject(t, quick, asYAML)
		r := centaur(t, "replay", filepath.Join(dir, "shop.star"), "--journal", asYAML)
		if r.exit != cli.ExitOK || !strings.Contains(r.stdout, "compatible: 1 of 1 entries in the same order; after the last entry the handler returned") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
		}
		sealed := filepath.Join(files, "order-1.yaml")
		writeRunObject(t, first, sealed)
		r = centaur(t, "replay", filepath.Join(dir, "shop.star"), "--journal", sealed)
		if r.exit != cli.ExitFailed || !strings.Contains(r.stderr, "sealed into WorkflowRunSegments") || !strings.Contains(r.stderr, "--run order-1 --namespace shop") {
			t.Fatalf("a run with sealed segments given as an object: exit %d\nstdout:\n%s\nstderr:\n%s", r.exit, r.stdout, r.stderr)
		}
	})
}

// editPyShop writes pyShopV1 with its step renamed into a directory of its own.
func editPyShop(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "py_shop.py")
	if err := os.WriteFile(path, []byte(strings.Replace(pyShopV1, `ctx.step("price"`, `ctx.step("cost"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeRunObject writes run as `kubectl get wfr NAME -o yaml` prints it (with its kind).
func writeRunObject(t *testing.T, run *workflowsv1alpha1.WorkflowRun, path string) {
	t.Helper()
	obj := run.DeepCopy()
	obj.SetGroupVersionKind(workflowsv1alpha1.GroupVersion.WithKind("WorkflowRun"))
	data, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
