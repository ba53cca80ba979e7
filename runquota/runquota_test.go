package runquota_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/runquota"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// k8s is a client of the package's API server.
var k8s client.Client

func TestMain(m *testing.M) {
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s, err = client.New(cluster.Config(), client.Options{Scheme: controllers.NewScheme()})
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	_ = cluster.Stop()
	os.Exit(code)
}

// namespace makes a namespace of its own for a test, named prefix and a random suffix.
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "-" + rand.String(5)
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// run is a run of hello with an input of about n bytes.
func run(ns, name string, n int) *workflowsv1alpha1.WorkflowRun {
	input := fmt.Sprintf(`{"name":%q}`, strings.Repeat("x", max(n-11, 0)))
	return &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello", Input: &apiextensionsv1.JSON{Raw: []byte(input)}}}
}

// gated is the API server's client behind a gate of limits that counts from the API server.
func gated(limits runquota.Limits) client.Client {
	g := runquota.New(limits)
	g.Bind(k8s)
	return g.Client(k8s)
}

// exceeded returns err as an *ExceededError, failing the test when it is not one.
func exceeded(t *testing.T, err error) *runquota.ExceededError {
	t.Helper()
	var e *runquota.ExceededError
	if !errors.As(err, &e) {
		t.Fatalf("err = %v; want an *ExceededError", err)
	}
	return e
}

func TestANamespaceHoldsAtMostItsQuotaOfRuns(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "runs-quota")
	reader := &heldReader{Reader: k8s}
	g := runquota.New(runquota.Limits{NamespaceRuns: 3})
	g.Bind(reader)
	c := g.Client(k8s)
	for i := range 3 {
		if err := c.Create(ctx, run(ns, fmt.Sprintf("r-%d", i), 100)); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	e := exceeded(t, c.Create(ctx, run(ns, "r-3", 100)))
	if e.Cluster || e.What != "runs" || !strings.Contains(e.Error(), "namespace "+ns+" holds 3 runs") {
		t.Fatalf("%+v: %v", e, e)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "r-3"}, &workflowsv1alpha1.WorkflowRun{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused run exists: %v", err)
	}
	// A create the API server refuses is not counted; a deleted run frees its place.
	if err := c.Create(ctx, run("no-such-namespace", "r", 100)); err == nil {
		t.Fatal("a run in a missing namespace was created")
	}
	// Once the gate has seen r-0 in its count, deleting r-0 frees its place.
	time.Sleep(1100 * time.Millisecond)
	lists := reader.lists.Load()
	exceeded(t, c.Create(ctx, run(ns, "r-3", 100)))
	reader.awaitList(t, lists) // the count behind that request, which sees r-0
	if err := k8s.Delete(ctx, run(ns, "r-0", 0)); err != nil {
		t.Fatal(err)
	}
	// The gate counts again each second.
	createWithin(t, c, run(ns, "r-3", 100), 10*time.Second)
}

// createWithin creates r through c, trying again until the gate admits it or timeout passed.
func createWithin(t *testing.T, c client.Client, r *workflowsv1alpha1.WorkflowRun, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := c.Create(context.Background(), r.DeepCopy())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("create %s: %v", r.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestANamespaceStoresAtMostItsQuotaOfBytesCountingRunsNotExecutedYet(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "bytes-quota")
	// The gate counts from a cache that drops large inputs, as the manager's does: the runs it
	// created keep their size after the cache shows them.
	g := runquota.New(runquota.Limits{NamespaceBytes: 10 << 10})
	g.Bind(leanReader{k8s})
	c := g.Client(k8s)
	for i := range 2 {
		if err := c.Create(ctx, run(ns, fmt.Sprintf("b-%d", i), 3<<10)); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the gate counts the cache again
	e := exceeded(t, c.Create(ctx, run(ns, "b-2", 3<<10)))
	if e.Cluster || e.What != "bytes" || e.Limit != 10<<10 {
		t.Fatalf("%+v", e)
	}
	// Another gate (another replica) counts the same runs from the API server.
	time.Sleep(1100 * time.Millisecond)
	exceeded(t, gated(runquota.Limits{NamespaceBytes: 10 << 10}).Create(ctx, run(ns, "b-2", 3<<10)))
	if err := c.Create(ctx, run(ns, "small", 100)); err != nil {
		t.Fatalf("a small run that fits: %v", err)
	}
}

func TestTheClusterBudgetBoundsEveryNamespaceTogether(t *testing.T) {
	ctx := context.Background()
	a, b := namespace(t, "total-a"), namespace(t, "total-b")
	var before workflowsv1alpha1.WorkflowRunList
	if err := k8s.List(ctx, &before); err != nil {
		t.Fatal(err)
	}
	// What the other tests stored counts too: give this one 20 KiB above it.
	var used int64
	for _, r := range before.Items {
		used += int64(len(r.Spec.Input.Raw)) + 1<<10
	}
	c := gated(runquota.Limits{NamespaceBytes: 1 << 30, TotalBytes: used + 20<<10})
	for i := range 2 {
		if err := c.Create(ctx, run(a, fmt.Sprintf("a-%d", i), 8<<10)); err != nil {
			t.Fatalf("a-%d: %v", i, err)
		}
	}
	e := exceeded(t, c.Create(ctx, run(b, "b-0", 8<<10)))
	if !e.Cluster || !strings.Contains(e.Error(), "--max-total-bytes") {
		t.Fatalf("%+v: %v", e, e)
	}
}

// leanReader lists runs as the manager's cache holds them (runstore.LeanRun): large inputs
// dropped.
type leanReader struct{ client.Reader }

func (r leanReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := r.Reader.List(ctx, list, opts...); err != nil {
		return err
	}
	if runs, ok := list.(*workflowsv1alpha1.WorkflowRunList); ok {
		for i := range runs.Items {
			if _, err := runstore.LeanRun(&runs.Items[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestARequestIsNotHeldBehindTheCount(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t, "behind")
	reader := &heldReader{Reader: k8s, release: make(chan struct{})}
	g := runquota.New(runquota.Limits{NamespaceRuns: 2})
	g.Bind(reader)
	c := g.Client(k8s)
	if err := c.Create(ctx, run(ns, "r-0", 100)); err != nil {
		t.Fatal(err)
	}
	// A request a second later has the cache counted again behind it (this one fails at the API
	// server); the count sees r-0, so that deleting r-0 frees its place at the next count.
	time.Sleep(1100 * time.Millisecond)
	lists := reader.lists.Load()
	if err := c.Create(ctx, run("no-such-namespace", "r", 100)); err == nil {
		t.Fatal("a run in a missing namespace was created")
	}
	reader.awaitList(t, lists)
	// From now on every count of the cache waits until the test lets it go on: a request that
	// waited for one would not return.
	reader.hold.Store(true)
	time.Sleep(1100 * time.Millisecond)
	admitted := make(chan error, 2)
	go func() {
		admitted <- c.Create(ctx, run(ns, "r-1", 100))
		admitted <- c.Create(ctx, run(ns, "r-2", 100))
	}()
	var errs []error
	for range 2 {
		select {
		case err := <-admitted:
			errs = append(errs, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a request waited for the count of the cache")
		}
	}
	if errs[0] != nil {
		t.Fatalf("r-1: %v", errs[0])
	}
	// The counts of a second ago and the runs created since still bound the namespace.
	exceeded(t, errs[1])

	// Once the held count goes on, it sees the delete.
	if err := k8s.Delete(ctx, run(ns, "r-0", 0)); err != nil {
		t.Fatal(err)
	}
	reader.hold.Store(false)
	close(reader.release)
	createWithin(t, c, run(ns, "r-2", 100), 10*time.Second)
}

// heldReader is a reader whose lists wait for release while hold is set, and which counts
// the lists it answered, so that a test knows when a count behind a request has read the runs.
type heldReader struct {
	client.Reader
	hold    atomic.Bool
	release chan struct{}
	lists   atomic.Int64
}

func (r *heldReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if r.hold.Load() {
		<-r.release
	}
	defer r.lists.Add(1)
	return r.Reader.List(ctx, list, opts...)
}

// awaitList waits until the reader answered more than before lists.
func (r *heldReader) awaitList(t *testing.T, before int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.lists.Load() <= before {
		if time.Now().After(deadline) {
			t.Fatal("the gate did not count the runs behind the request")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
