// Package runquota decides whether a new WorkflowRun fits before the manager creates it: the
// runs of its namespace (how many, and how many bytes they store) and the bytes all the
// operator's runs store, so that no path into the manager (webhooks, the REST API, the
// console, child runs, schedules, backfills) can fill etcd for everyone.
//
// The Gate counts from a cache of every run (the manager's view), counted again about once a
// second behind the requests (a request waits for a count only when the last one is over
// staleLimit old), plus what this process created since; its Client wraps the manager's
// client so that every Create of a WorkflowRun asks it first. A refusal is an *ExceededError,
// which the HTTP API answers with 429 (a namespace's quota) or 507 (the cluster-wide budget).
// Several replicas count the same cache, so between two counts each may admit what fits; the
// bounds hold to within about a second of creations. Runs made with kubectl do not pass here:
// a ResourceQuota on count/workflowruns.workflows.centaur.dev bounds those (config/quota).
package runquota

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
)

// Defaults of the manager's flags.
const (
	// DefaultMaxNamespaceRuns bounds the WorkflowRuns one namespace holds.
	DefaultMaxNamespaceRuns = 10_000
	// DefaultMaxTotalBytes bounds what all runs store together: half of etcd's default
	// quota of 2 GiB, so that the rest of the cluster keeps room.
	DefaultMaxTotalBytes = 1 << 30
)

// refreshEvery is how old the counts may get before the cache is counted again, behind the
// request that finds them so; staleLimit is how old they may get before a request waits for a
// count of its own (the background counts failed, or the first count).
const (
	refreshEvery = time.Second
	staleLimit   = 10 * time.Second
)

// runOverhead is what a run's object costs beside its input before it executes.
const runOverhead = 1 << 10

// Limits are the bounds a Gate enforces; a zero or negative one is not enforced.
type Limits struct {
	// NamespaceRuns bounds the runs of one namespace.
	NamespaceRuns int
	// NamespaceBytes bounds what the runs of one namespace store.
	NamespaceBytes int64
	// TotalBytes bounds what all runs store.
	TotalBytes int64
}

// Gate admits new runs within its Limits. Its methods are safe for concurrent use; a nil Gate
// admits everything.
type Gate struct {
	limits Limits

	mu     sync.Mutex
	reader client.Reader
	at     time.Time
	counts map[string]usage
	total  int64
	// counting is true while a count runs behind the requests; epoch changes with each Bind
	// and each count put in place, so that a count behind the requests that a newer count or
	// another reader overtook is dropped.
	counting bool
	epoch    uint64
	// created are the runs this process created whose bytes the cache cannot tell yet (a run
	// that has not executed records nothing): by namespace/name, their input's size and when.
	created map[string]createdRun
}

// usage is what a namespace's runs hold.
type usage struct {
	runs  int
	bytes int64
}

// createdRun is a run this process created: its size until it records its own, when, and
// whether the cache has shown it (once it has, its absence means it is gone).
type createdRun struct {
	bytes  int64
	at     time.Time
	listed bool
}

// New returns a gate with limits; it admits everything until Bind gives it the runs to count.
func New(limits Limits) *Gate {
	return &Gate{limits: limits, created: map[string]createdRun{}}
}

// Bind gives the gate the reader of every run (the manager's cache or view of all runs).
func (g *Gate) Bind(reader client.Reader) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reader, g.at = reader, time.Time{}
	g.epoch++
}

// Admit returns nil when run fits, and then counts it; otherwise an *ExceededError.
func (g *Gate) Admit(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reader == nil {
		return nil
	}
	switch age := time.Since(g.at); {
	case age > staleLimit:
		if err := g.refresh(ctx); err != nil {
			return err
		}
	case age > refreshEvery && !g.counting:
		// Counting every run of the cache takes milliseconds per thousand runs: the requests
		// that arrive meanwhile are admitted on the counts of a second ago and what this
		// process created since, instead of queueing behind the count.
		g.counting = true
		go g.refreshBehind(context.WithoutCancel(ctx), g.reader, g.epoch)
	}
	size := sizeOf(run)
	ns := g.counts[run.Namespace]
	switch {
	case g.limits.NamespaceRuns > 0 && ns.runs+1 > g.limits.NamespaceRuns:
		return &ExceededError{Namespace: run.Namespace, What: "runs", Used: int64(ns.runs), Adding: 1, Limit: int64(g.limits.NamespaceRuns)}
	case g.limits.NamespaceBytes > 0 && ns.bytes+size > g.limits.NamespaceBytes:
		return &ExceededError{Namespace: run.Namespace, What: "bytes", Used: ns.bytes, Adding: size, Limit: g.limits.NamespaceBytes}
	case g.limits.TotalBytes > 0 && g.total+size > g.limits.TotalBytes:
		return &ExceededError{Cluster: true, Namespace: run.Namespace, What: "bytes", Used: g.total, Adding: size, Limit: g.limits.TotalBytes}
	}
	g.count(run.Namespace, 1, size)
	if run.Name != "" {
		g.created[run.Namespace+"/"+run.Name] = createdRun{bytes: size, at: time.Now()}
	}
	return nil
}

// Forget uncounts a run that was admitted but not created after all.
func (g *Gate) Forget(run *workflowsv1alpha1.WorkflowRun) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := run.Namespace + "/" + run.Name
	if c, ok := g.created[key]; ok {
		delete(g.created, key)
		g.count(run.Namespace, -1, -c.bytes)
	}
}

// count adds runs and bytes to a namespace and the total.
func (g *Gate) count(namespace string, runs int, bytes int64) {
	u := g.counts[namespace]
	u.runs += runs
	u.bytes += bytes
	g.counts[namespace] = u
	g.total += bytes
}

// createdGrace is how long a run this process created is counted by its input while the cache
// does not show it: a cache loaded with large objects can lag the API server by many seconds,
// and a run it never showed may have been deleted meanwhile (counted, then, a little longer
// than it lived).
const createdGrace = 2 * time.Minute

// refresh counts every run of the cache again, with g.mu held.
func (g *Gate) refresh(ctx context.Context) error {
	c, err := countRuns(ctx, g.reader)
	if err != nil {
		return err
	}
	g.apply(c)
	return nil
}

// refreshBehind counts the runs of reader without holding g.mu, then puts the count in place
// unless the gate's epoch moved on meanwhile (Bind changed the reader, or a request waited for
// a newer count). A failed count leaves the old one, which the next request counts again
// behind it, or waits for once it is staleLimit old.
func (g *Gate) refreshBehind(ctx context.Context, reader client.Reader, epoch uint64) {
	ctx, cancel := context.WithTimeout(ctx, staleLimit)
	defer cancel()
	c, err := countRuns(ctx, reader)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.counting = false
	if err == nil && g.epoch == epoch {
		g.apply(c)
	}
}

// cacheCount is what one list of the cache holds: each namespace's usage and the total, and
// each run's bytes by namespace/name, for apply to reconcile with the runs this process created.
type cacheCount struct {
	counts map[string]usage
	total  int64
	runs   map[string]listedRun
}

// listedRun is a run as the count listed it.
type listedRun struct {
	bytes int64
	known bool
}

// countRuns lists every run of reader and counts them.
func countRuns(ctx context.Context, reader client.Reader) (cacheCount, error) {
	var runs workflowsv1alpha1.WorkflowRunList
	if err := reader.List(ctx, &runs, client.UnsafeDisableDeepCopy); err != nil {
		return cacheCount{}, fmt.Errorf("count the runs to admit a new one: %w", err)
	}
	c := cacheCount{counts: map[string]usage{}, runs: make(map[string]listedRun, len(runs.Items))}
	for i := range runs.Items {
		r := &runs.Items[i]
		bytes, known := recordedBytes(r)
		c.runs[r.Namespace+"/"+r.Name] = listedRun{bytes: bytes, known: known}
		u := c.counts[r.Namespace]
		u.runs++
		u.bytes += bytes
		c.counts[r.Namespace] = u
		c.total += bytes
	}
	return c, nil
}

// apply makes c the gate's counts, with g.mu held, adding what the cache cannot tell yet of the
// runs this process created: a listed run whose cache copy dropped its input counts at least
// its input's size, and a run created a moment ago that the cache does not show yet counts
// its input's size.
func (g *Gate) apply(c cacheCount) {
	g.counts, g.total = c.counts, c.total
	g.epoch++
	for key, created := range g.created {
		listed, ok := c.runs[key]
		switch {
		case ok && listed.known:
			delete(g.created, key)
		case ok:
			ns, _, _ := strings.Cut(key, "/")
			g.count(ns, 0, max(listed.bytes, created.bytes)-listed.bytes)
			created.listed = true
			g.created[key] = created
		case created.listed || time.Since(created.at) > createdGrace:
			delete(g.created, key) // created, then deleted, or never created
		default:
			ns, _, _ := strings.Cut(key, "/")
			g.count(ns, 1, created.bytes) // created a moment ago; the cache has not seen it yet
		}
	}
	g.at = time.Now()
}

// recordedBytes is what a run stores as it last said (status.history.recordedBytes counts the
// input too), or its object's size before it executed. known is false when the cache dropped
// a large input (runstore.LeanRun): the size is then at least what it returns.
func recordedBytes(run *workflowsv1alpha1.WorkflowRun) (bytes int64, known bool) {
	switch {
	case run.Status.History != nil && run.Status.History.RecordedBytes > 0:
		return run.Status.History.RecordedBytes, true
	case runstore.InputDropped(run):
		return runstore.LeanInputBytes + runOverhead, false
	case run.Spec.Input != nil:
		return int64(len(run.Spec.Input.Raw)) + runOverhead, true
	}
	return runOverhead, true
}

// sizeOf is what a new run will store at first: its input and its object.
func sizeOf(run *workflowsv1alpha1.WorkflowRun) int64 {
	n := int64(runOverhead)
	if run.Spec.Input != nil {
		n += int64(len(run.Spec.Input.Raw))
	}
	return n
}

// ExceededError says that a run was not created because it does not fit a quota.
type ExceededError struct {
	// Cluster is true for the cluster-wide budget, false for the namespace's quota.
	Cluster bool
	// Namespace is the run's namespace.
	Namespace string
	// What is "runs" or "bytes".
	What string
	// Used, Adding and Limit are the count before the run, what it would add, and the bound.
	Used, Adding, Limit int64
}

func (e *ExceededError) Error() string {
	if e.Cluster {
		return fmt.Sprintf("the operator's runs store %d bytes in all, and this run's %d would pass the cluster's budget of %d (--max-total-bytes): the cluster is out of room for runs until finished ones are deleted (ttlSecondsAfterFinished)",
			e.Used, e.Adding, e.Limit)
	}
	if e.What == "runs" {
		return fmt.Sprintf("namespace %s holds %d runs, its quota (--max-namespace-runs): delete finished runs, or set ttlSecondsAfterFinished, before starting more",
			e.Namespace, e.Used)
	}
	return fmt.Sprintf("the runs of namespace %s store %d bytes, and this run's %d would pass the namespace's quota of %d (--max-namespace-bytes): delete finished runs, or pass large data by reference",
		e.Namespace, e.Used, e.Adding, e.Limit)
}

// RetryAfter is how long a caller refused by a quota should wait: finished runs expire over
// minutes.
const RetryAfter = time.Minute

// Client wraps c so that every Create of a WorkflowRun is admitted by g first.
func (g *Gate) Client(c client.Client) client.Client {
	return &gatedClient{Client: c, gate: g}
}

// gatedClient is a client whose run creations pass the gate.
type gatedClient struct {
	client.Client
	gate *Gate
}

// Create admits a WorkflowRun before creating it, and uncounts it when the create fails.
func (c *gatedClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	run, ok := obj.(*workflowsv1alpha1.WorkflowRun)
	if !ok {
		return c.Client.Create(ctx, obj, opts...)
	}
	if err := c.gate.Admit(ctx, run); err != nil {
		return err
	}
	err := c.Client.Create(ctx, obj, opts...)
	if err != nil {
		c.gate.Forget(run)
	}
	return err
}
