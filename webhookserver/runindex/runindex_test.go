package runindex

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// epoch is the creation time of the first run the tests make.
var epoch = time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)

// run makes an indexed run created i seconds after epoch.
func run(ns, name string, i int, mods ...func(*Run)) Run {
	r := Run{Namespace: ns, Name: name, Workflow: "hello", Phase: workflowsv1alpha1.PhaseSucceeded, CreatedAt: epoch.Add(time.Duration(i) * time.Second)}
	for _, m := range mods {
		m(&r)
	}
	return r
}

// names lists the page's runs as namespace/name.
func names(p Page) []string {
	out := make([]string, len(p.Runs))
	for i, r := range p.Runs {
		out[i] = r.Namespace + "/" + r.Name
	}
	return out
}

func mustList(t *testing.T, ix *Index, q Query) Page {
	t.Helper()
	p, err := ix.List(q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return p
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

func TestListIsNewestFirstAcrossNamespaces(t *testing.T) {
	ix := New()
	ix.Upsert(run("a", "zeta", 1))
	ix.Upsert(run("b", "kubectl-made", 3))
	ix.Upsert(run("a", "alpha", 2))
	ix.Upsert(run("c", "other-team", 4))
	ix.Upsert(run("b", "same-second-b", 2))

	p := mustList(t, ix, Query{Namespaces: []string{"a", "b"}})
	equal(t, names(p), []string{"b/kubectl-made", "a/alpha", "b/same-second-b", "a/zeta"})
	if p.Total != 4 || p.Next != "" {
		t.Fatalf("total %d next %q, want 4 and no next page", p.Total, p.Next)
	}
	if got := mustList(t, ix, Query{}); len(got.Runs) != 0 {
		t.Fatalf("a query without namespaces found %v", names(got))
	}
}

func TestCursorPagesStayStableWhileRunsArrive(t *testing.T) {
	ix := New()
	for i := range 10 {
		ix.Upsert(run("a", fmt.Sprintf("r%02d", i), i))
	}
	first := mustList(t, ix, Query{Namespaces: []string{"a"}, Limit: 4})
	equal(t, names(first), []string{"a/r09", "a/r08", "a/r07", "a/r06"})

	// New runs arrive while the person reads the first page: the next page goes on where the
	// first ended, neither repeating nor skipping runs.
	ix.Upsert(run("a", "new1", 20))
	ix.Upsert(run("a", "new2", 21))
	second := mustList(t, ix, Query{Namespaces: []string{"a"}, Limit: 4, After: first.Next})
	equal(t, names(second), []string{"a/r05", "a/r04", "a/r03", "a/r02"})
	last := mustList(t, ix, Query{Namespaces: []string{"a"}, Limit: 4, After: second.Next})
	equal(t, names(last), []string{"a/r01", "a/r00"})
	if last.Next != "" {
		t.Fatalf("the last page has a next cursor %q", last.Next)
	}

	// The run a cursor points at may be deleted meanwhile; the cursor still works.
	ix.Delete("a", "r05")
	again := mustList(t, ix, Query{Namespaces: []string{"a"}, Limit: 2, After: first.Next})
	equal(t, names(again), []string{"a/r04", "a/r03"})
}

func TestFilters(t *testing.T) {
	ix := New()
	ix.Upsert(run("a", "greet-1", 1))
	ix.Upsert(run("a", "approve-1", 2, func(r *Run) {
		r.Workflow, r.Phase, r.WaitingFor = "approval", workflowsv1alpha1.PhaseWaiting, "event approval.decided/REQ-42"
	}))
	ix.Upsert(run("a", "hook-1", 3, func(r *Run) {
		r.Workflow, r.Phase, r.Reason = "github_issue_triage", workflowsv1alpha1.PhaseFailed, "StepFailed"
		r.Labels = map[string]string{workflowsv1alpha1.LabelWebhook: "github-issues"}
	}))

	cases := []struct {
		name  string
		query Query
		want  []string
	}{
		{"workflow", Query{Workflow: "approval"}, []string{"a/approve-1"}},
		{"phases", Query{Phases: []workflowsv1alpha1.RunPhase{workflowsv1alpha1.PhaseFailed, workflowsv1alpha1.PhaseWaiting}}, []string{"a/hook-1", "a/approve-1"}},
		{"webhook", Query{Webhook: "github-issues"}, []string{"a/hook-1"}},
		{"text in a wait, any case", Query{Text: "req-42"}, []string{"a/approve-1"}},
		{"text in a reason", Query{Text: "stepfailed"}, []string{"a/hook-1"}},
		{"text in a label", Query{Text: "GITHUB-ISSUES"}, []string{"a/hook-1"}},
		{"nothing matches", Query{Text: "no such thing"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.query.Namespaces = []string{"a"}
			equal(t, names(mustList(t, ix, tc.query)), tc.want)
		})
	}
}

func TestFilteredPagesLookAheadForANextPage(t *testing.T) {
	ix := New()
	for i := range 30 {
		phase := workflowsv1alpha1.PhaseSucceeded
		if i%10 == 0 {
			phase = workflowsv1alpha1.PhaseFailed
		}
		ix.Upsert(run("a", fmt.Sprintf("r%02d", i), i, func(r *Run) { r.Phase = phase }))
	}
	q := Query{Namespaces: []string{"a"}, Phases: []workflowsv1alpha1.RunPhase{workflowsv1alpha1.PhaseFailed}, Limit: 2}
	p := mustList(t, ix, q)
	equal(t, names(p), []string{"a/r20", "a/r10"})
	if p.Next == "" {
		t.Fatal("a third failed run exists, but the page has no next cursor")
	}
	q.After = p.Next
	p = mustList(t, ix, q)
	equal(t, names(p), []string{"a/r00"})
	if p.Next != "" {
		t.Fatalf("no failed run is older, but the page has a next cursor")
	}
}

func TestUpsertReplacesAndDeleteRemoves(t *testing.T) {
	ix := New()
	ix.Upsert(run("a", "parent", 1, func(r *Run) { r.Phase = workflowsv1alpha1.PhaseWaiting }))
	ix.Upsert(run("a", "child-2", 3, func(r *Run) { r.Parent = "parent" }))
	ix.Upsert(run("a", "child-1b", 2, func(r *Run) { r.Parent = "parent" }))
	ix.Upsert(run("a", "child-1", 2, func(r *Run) { r.Parent = "parent" }))
	ix.Upsert(run("a", "parent", 1, func(r *Run) { r.Phase = workflowsv1alpha1.PhaseSucceeded }))

	if ix.Len() != 4 || ix.Count("a") != 4 {
		t.Fatalf("len %d, count %d: an update added a run", ix.Len(), ix.Count("a"))
	}
	if got, _ := ix.Get("a", "parent"); got.Phase != workflowsv1alpha1.PhaseSucceeded {
		t.Fatalf("the parent's phase is %s after its update", got.Phase)
	}
	var kids []string
	for _, k := range ix.Children("a", "parent") {
		kids = append(kids, k.Name)
	}
	equal(t, kids, []string{"child-1", "child-1b", "child-2"})
	ix.Delete("a", "child-1")
	ix.Delete("a", "never-existed")
	if kids := ix.Children("a", "parent"); len(kids) != 2 {
		t.Fatalf("children after a delete: %v", kids)
	}
	equal(t, names(mustList(t, ix, Query{Namespaces: []string{"a"}})), []string{"a/child-2", "a/child-1b", "a/parent"})
}

func TestBadCursorsAreRefused(t *testing.T) {
	ix := New()
	for _, c := range []string{"%%%", "bm90LWEtY3Vyc29y", "eC9hL2I"} {
		if _, err := ix.List(Query{Namespaces: []string{"a"}, After: c}); err == nil {
			t.Errorf("cursor %q was accepted", c)
		}
	}
}

func TestSubscriptionsHearOnlyTheirRunsAndCoalesce(t *testing.T) {
	ix := New()
	sub := ix.Subscribe(func(r *Run) bool { return r.Namespace == "a" })
	defer sub.Close()

	ix.Upsert(run("b", "elsewhere", 1))
	select {
	case <-sub.C():
		t.Fatal("a change in another namespace woke the subscription")
	default:
	}
	for i := range 5 {
		ix.Upsert(run("a", "busy", 1, func(r *Run) { r.CurrentStep = fmt.Sprint(i) }))
	}
	<-sub.C()
	select {
	case <-sub.C():
		t.Fatal("five changes woke the subscription more than once before it read")
	default:
	}
	ix.Delete("a", "busy")
	<-sub.C()
	sub.Close()
	if ix.Subscribers() != 0 {
		t.Fatalf("%d subscriptions left after Close", ix.Subscribers())
	}
}

func TestFromObjectKeepsOnlySmallFields(t *testing.T) {
	ctrl := true
	wake := metav1.NewMicroTime(epoch.Add(time.Minute))
	obj := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "a", Name: "child", ResourceVersion: "42", CreationTimestamp: metav1.NewTime(epoch),
			Labels:          map[string]string{workflowsv1alpha1.LabelParentRun: "truncated-label", "app": "x"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "WorkflowRun", Name: "the-real-parent", Controller: &ctrl}},
		},
		Spec:   workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello"},
		Status: workflowsv1alpha1.WorkflowRunStatus{Phase: workflowsv1alpha1.PhaseSleeping, WakeAt: &wake, CurrentStep: "nap"},
	}
	r := FromObject(obj)
	if r.Parent != "the-real-parent" || r.ResourceVersion != "42" || !r.WakeAt.Equal(wake.Time) || r.CurrentStep != "nap" {
		t.Fatalf("FromObject = %+v", r)
	}
	if _, ok := r.Labels["app"]; ok {
		t.Fatal("a label that is not the operator's was kept")
	}
	if FromObject(&workflowsv1alpha1.WorkflowRun{}).Phase != workflowsv1alpha1.PhasePending {
		t.Fatal("a run without a phase is not Pending")
	}
}

// tenThousand fills an index with 10,000 runs of one namespace (one in a hundred failed, the
// rest succeeded, ten workflows) and 1,000 of another.
func tenThousand() *Index {
	ix := New()
	for i := range 10000 {
		ix.Upsert(run("big", fmt.Sprintf("run-%05d", i), i, func(r *Run) {
			r.Workflow = fmt.Sprintf("wf-%d", i%10)
			if i%100 == 0 {
				r.Phase, r.Reason = workflowsv1alpha1.PhaseFailed, "StepFailed"
			}
		}))
	}
	for i := range 1000 {
		ix.Upsert(run("small", fmt.Sprintf("other-%04d", i), i))
	}
	return ix
}

func TestTenThousandRunsPageThroughInOrder(t *testing.T) {
	ix := tenThousand()
	q := Query{Namespaces: []string{"big"}, Limit: MaxLimit}
	seen, pages := 0, 0
	var last *Run
	start := time.Now()
	for {
		p := mustList(t, ix, q)
		pages++
		for i := range p.Runs {
			if last != nil && !before(last, &p.Runs[i]) {
				t.Fatalf("%s/%s listed after %s/%s", p.Runs[i].Namespace, p.Runs[i].Name, last.Namespace, last.Name)
			}
			last = &p.Runs[i]
		}
		seen += len(p.Runs)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if seen != 10000 {
		t.Fatalf("paging saw %d runs, want 10000", seen)
	}
	t.Logf("paged through 10,000 runs in %d pages of %d in %s", pages, MaxLimit, time.Since(start))
}

// BenchmarkList measures the runs page's reads of an index of 10,000 runs in a namespace:
// the newest page, a page deep down, and pages whose filters skip most runs.
func BenchmarkList(b *testing.B) {
	ix := tenThousand()
	deep := mustListB(b, ix, Query{Namespaces: []string{"big"}, Limit: MaxLimit})
	for range 15 {
		deep = mustListB(b, ix, Query{Namespaces: []string{"big"}, Limit: MaxLimit, After: deep.Next})
	}
	cases := []struct {
		name  string
		query Query
	}{
		{"newest 50", Query{Namespaces: []string{"big"}}},
		{"50 after 8000", Query{Namespaces: []string{"big"}, After: deep.Next}},
		{"two namespaces merged", Query{Namespaces: []string{"big", "small"}}},
		{"1 in 100 failed", Query{Namespaces: []string{"big"}, Phases: []workflowsv1alpha1.RunPhase{workflowsv1alpha1.PhaseFailed}}},
		{"text matching nothing", Query{Namespaces: []string{"big"}, Text: "no such run"}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				mustListB(b, ix, tc.query)
			}
		})
	}
}

func mustListB(b *testing.B, ix *Index, q Query) Page {
	p, err := ix.List(q)
	if err != nil {
		b.Fatal(err)
	}
	return p
}
