// Package runindex keeps an index of every WorkflowRun's identity and small status fields in
// the manager's memory, newest first, so that the web console can page through runs in
// creation order and filter them without asking the API server.
//
// Why an index: the API server lists objects in name order, not time order. Runs the REST API
// starts have time-ordered names, but webhook, child, kubectl and scheduled runs do not, so
// "the newest runs" across all of them cannot be read page by page from the API server. The
// manager already watches every WorkflowRun (its controller does); the index hangs off that
// watch (Attach) and keeps about 400 bytes per run: names, workflow, phase, times, the step a
// run is at, what it waits for, its error reason and its parent. It never holds a run's input,
// output or journal (the cache may not hold them either); the console reads one run's detail
// from the API server.
//
// Pages are cut with a keyset cursor (creation time, name, namespace), so a page costs the
// runs it returns plus the ones its filters skip, whatever the index's size, and runs created
// while someone pages do not shift the pages they are reading. Subscribers are told when runs
// they care about change, which is what the console's live updates wait on.
package runindex

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Run is what the index keeps of one WorkflowRun. Runs handed out by the index are copies;
// their Labels map is shared and must not be modified.
type Run struct {
	// Namespace and Name identify the WorkflowRun.
	Namespace, Name string
	// UID tells a run from an earlier run of the same name.
	UID types.UID
	// ResourceVersion is the version of the run the index saw last.
	ResourceVersion string
	// Workflow is spec.workflowName.
	Workflow string
	// Phase is status.phase, Pending before the engine wrote one.
	Phase workflowsv1alpha1.RunPhase
	// CreatedAt is metadata.creationTimestamp (whole seconds): the index's order, newest first.
	CreatedAt time.Time
	// StartedAt, FinishedAt and WakeAt are status.startedAt, status.finishedAt and
	// status.wakeAt; zero when unset.
	StartedAt, FinishedAt, WakeAt time.Time
	// CurrentStep and WaitingFor are status.currentStep and status.waitingFor.
	CurrentStep, WaitingFor string
	// Reason is status.error.reason of a failed or cancelled run.
	Reason string
	// CancelRequested is spec.cancel.
	CancelRequested bool
	// Parent is the name of the parent run of a child run (same namespace), empty otherwise.
	Parent string
	// Revision is status.workflowRevision.
	Revision string
	// Labels are the run's workflows.centaur.dev/ labels (webhook, schedule, parent, workflow).
	Labels map[string]string

	// search is the lower-case text a Text filter searches, set when the run is indexed.
	search string
}

// Key is the run's namespace and name.
func (r *Run) Key() types.NamespacedName {
	return types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
}

// Webhook is the slug of the webhook whose delivery started the run, if one did.
func (r *Run) Webhook() string { return r.Labels[workflowsv1alpha1.LabelWebhook] }

// FromObject extracts what the index keeps of run.
func FromObject(run *workflowsv1alpha1.WorkflowRun) Run {
	r := Run{
		Namespace:       run.Namespace,
		Name:            run.Name,
		UID:             run.UID,
		ResourceVersion: run.ResourceVersion,
		Workflow:        run.Spec.WorkflowName,
		Phase:           run.Status.Phase,
		CreatedAt:       run.CreationTimestamp.UTC(),
		CurrentStep:     run.Status.CurrentStep,
		WaitingFor:      run.Status.WaitingFor,
		CancelRequested: run.Spec.Cancel,
		Revision:        run.Status.WorkflowRevision,
		Parent:          ParentOf(run),
	}
	if r.Phase == "" {
		r.Phase = workflowsv1alpha1.PhasePending
	}
	if t := run.Status.StartedAt; t != nil {
		r.StartedAt = t.UTC()
	}
	if t := run.Status.FinishedAt; t != nil {
		r.FinishedAt = t.UTC()
	}
	if t := run.Status.WakeAt; t != nil {
		r.WakeAt = t.UTC()
	}
	if e := run.Status.Error; e != nil {
		r.Reason = e.Reason
	}
	for k, v := range run.Labels {
		if strings.HasPrefix(k, workflowsv1alpha1.LabelPrefix) {
			if r.Labels == nil {
				r.Labels = map[string]string{}
			}
			r.Labels[k] = v
		}
	}
	return r
}

// ParentOf is the name of a child run's parent: the controlling owner of kind WorkflowRun
// (exact even for long names), else the parent-run label; empty for a run without a parent.
func ParentOf(run *workflowsv1alpha1.WorkflowRun) string {
	for _, o := range run.OwnerReferences {
		if o.Kind == "WorkflowRun" && o.Controller != nil && *o.Controller {
			return o.Name
		}
	}
	return run.Labels[workflowsv1alpha1.LabelParentRun]
}

// before reports whether a comes before b in the index's order: newer first, then by name,
// then by namespace, so that every run has one place.
func before(a, b *Run) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	if a.Name != b.Name {
		return a.Name < b.Name
	}
	return a.Namespace < b.Namespace
}

// Index is the in-memory index of runs, safe for concurrent use. The zero value is not
// usable; call New.
type Index struct {
	mu         sync.RWMutex
	namespaces map[string]*namespaceRuns
	size       int
	synced     atomic.Bool

	subsMu sync.Mutex
	subs   map[*Subscription]struct{}
}

// namespaceRuns are one namespace's runs, in the index's order, and their children by parent.
type namespaceRuns struct {
	order    []*Run
	byName   map[string]*Run
	children map[string]map[string]struct{}
}

// New returns an empty index.
func New() *Index {
	return &Index{namespaces: map[string]*namespaceRuns{}, subs: map[*Subscription]struct{}{}}
}

// Synced reports whether the index holds every run the watch listed at start. Until then
// pages may miss runs.
func (ix *Index) Synced() bool { return ix.synced.Load() }

// MarkSynced records that the watch's initial list is in the index (Attach calls it).
func (ix *Index) MarkSynced() { ix.synced.Store(true) }

// Len is the number of runs in the index.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.size
}

// Count is the number of runs in namespace.
func (ix *Index) Count(namespace string) int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ns := ix.namespaces[namespace]; ns != nil {
		return len(ns.order)
	}
	return 0
}

// Upsert adds run or replaces the index's copy of it, and tells the subscribers.
func (ix *Index) Upsert(run Run) {
	r := &run
	r.search = searchText(r)
	ix.mu.Lock()
	ns := ix.namespaces[r.Namespace]
	if ns == nil {
		ns = &namespaceRuns{byName: map[string]*Run{}, children: map[string]map[string]struct{}{}}
		ix.namespaces[r.Namespace] = ns
	}
	old := ns.byName[r.Name]
	if old != nil {
		ns.remove(old)
		ix.size--
	}
	ns.insert(r)
	ix.size++
	ix.mu.Unlock()
	ix.notify(old, r)
}

// Delete removes the run namespace/name, if the index has it, and tells the subscribers.
func (ix *Index) Delete(namespace, name string) {
	ix.mu.Lock()
	ns := ix.namespaces[namespace]
	var old *Run
	if ns != nil {
		old = ns.byName[name]
	}
	if old != nil {
		ns.remove(old)
		ix.size--
		if len(ns.order) == 0 {
			delete(ix.namespaces, namespace)
		}
	}
	ix.mu.Unlock()
	if old != nil {
		ix.notify(old, nil)
	}
}

// insert puts r at its place in the order.
func (ns *namespaceRuns) insert(r *Run) {
	i := sort.Search(len(ns.order), func(i int) bool { return !before(ns.order[i], r) })
	ns.order = append(ns.order, nil)
	copy(ns.order[i+1:], ns.order[i:])
	ns.order[i] = r
	ns.byName[r.Name] = r
	if r.Parent != "" {
		kids := ns.children[r.Parent]
		if kids == nil {
			kids = map[string]struct{}{}
			ns.children[r.Parent] = kids
		}
		kids[r.Name] = struct{}{}
	}
}

// remove takes r, which the namespace holds, out of the order.
func (ns *namespaceRuns) remove(r *Run) {
	i := sort.Search(len(ns.order), func(i int) bool { return !before(ns.order[i], r) })
	if i < len(ns.order) && ns.order[i] == r {
		ns.order = append(ns.order[:i], ns.order[i+1:]...)
	}
	delete(ns.byName, r.Name)
	if kids := ns.children[r.Parent]; kids != nil {
		delete(kids, r.Name)
		if len(kids) == 0 {
			delete(ns.children, r.Parent)
		}
	}
}

// Get returns a copy of the run namespace/name.
func (ix *Index) Get(namespace, name string) (Run, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ns := ix.namespaces[namespace]; ns != nil {
		if r := ns.byName[name]; r != nil {
			return *r, true
		}
	}
	return Run{}, false
}

// Children returns copies of the child runs of namespace/parent, oldest first (the order the
// parent started them).
func (ix *Index) Children(namespace, parent string) []Run {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ns := ix.namespaces[namespace]
	if ns == nil {
		return nil
	}
	out := make([]Run, 0, len(ns.children[parent]))
	for name := range ns.children[parent] {
		out = append(out, *ns.byName[name])
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out
}
