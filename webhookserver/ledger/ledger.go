// Package ledger remembers, for a bounded time, the webhook runs that were deleted, so that a
// captured delivery replayed once its run is gone (deleted after --webhook-run-ttl, or by
// anyone) starts nothing. A webhook run's name is derived from its delivery
// (webhookserver.DeliveryRunName), so the ledger keeps a hash of each deleted run's namespace
// and name, and the webhook server answers a delivery whose run name it holds as a
// redelivery: 200, with the run marked deleted, and no run created.
//
// The ledger lives in ConfigMaps of the operator's namespace, one page per day (page.go),
// shared by every replica. Each replica reads the pages into memory every RefreshInterval
// (only those whose resourceVersion changed), so the check on a delivery is a few binary
// searches and no request. Identities are written in batches every FlushInterval, with
// retries on conflicts, from where runs are deleted: the WorkflowRun controller records a run
// before its TTL deletes it (RecordRun), and the Keeper, on the elected replica, notes every
// other deletion it sees. The Keeper also deletes the pages past the retention.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// Defaults of Config.
const (
	// DefaultRetention keeps a deleted run's identity for 30 days: four times the week a
	// webhook run is kept after it finished (--webhook-run-ttl), longer than providers retry
	// or let a person redeliver from their dashboard (GitHub: 3 days of recent deliveries).
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultFlushInterval is how often recorded identities are written.
	DefaultFlushInterval = time.Second
	// DefaultRefreshInterval is how often a replica reads the pages that changed.
	DefaultRefreshInterval = 2 * time.Second
	// DefaultPruneInterval is how often the Keeper deletes the pages past the retention.
	DefaultPruneInterval = time.Hour
)

// Bounds of the ledger's own work.
const (
	// recordTimeout bounds how long RecordRun waits for the write that stores its run.
	recordTimeout = 30 * time.Second
	// finalFlushTimeout bounds the last write at shutdown.
	finalFlushTimeout = 5 * time.Second
)

// Config configures a Ledger.
type Config struct {
	// Namespace holds the ledger's ConfigMaps: the operator's own namespace.
	Namespace string
	// Retention is how long an identity is kept after its run's deletion: at least that
	// long, and up to a day more (pages are deleted by the day). Zero means DefaultRetention.
	Retention time.Duration
	// Client writes and deletes the ledger's ConfigMaps.
	Client client.Writer
	// Reader reads them from the API server, past any cache: a cache of ConfigMaps would
	// watch every ConfigMap of the cluster.
	Reader client.Reader
	// Logger receives the ledger's failures and prunes.
	Logger logr.Logger
	// Clock returns the current time; nil means time.Now. Tests move it past the retention.
	Clock func() time.Time
	// FlushInterval, RefreshInterval and PruneInterval are how often identities are written,
	// pages are read, and old pages deleted; zero means their Default.
	FlushInterval, RefreshInterval, PruneInterval time.Duration
}

// Ledger is one replica's view of the ledger and its writer of identities. It is a manager
// runnable that runs on every replica (its loop reads and writes the pages); Keeper is the
// part that runs on the elected replica only.
type Ledger struct {
	cfg Config
	// pages is what this replica knows of the ledger; the loop replaces it, lookups read it.
	pages atomic.Pointer[[]page]
	// stopped is closed when the loop ended, so that RecordRun stops waiting for it.
	stopped chan struct{}

	mu      sync.Mutex
	pending map[identity]bool // identities to write at the next flush
	waiters []chan error      // RecordRun calls waiting for the next flush
}

// New returns a ledger; add it to the manager (and its Keeper) to run it.
func New(cfg Config) *Ledger {
	cfg.Retention = orDefault(cfg.Retention, DefaultRetention)
	cfg.FlushInterval = orDefault(cfg.FlushInterval, DefaultFlushInterval)
	cfg.RefreshInterval = orDefault(cfg.RefreshInterval, DefaultRefreshInterval)
	cfg.PruneInterval = orDefault(cfg.PruneInterval, DefaultPruneInterval)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	l := &Ledger{cfg: cfg, stopped: make(chan struct{}), pending: map[identity]bool{}}
	l.pages.Store(&[]page{})
	return l
}

// orDefault is d when it is positive, else def.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Retention is how long the ledger keeps a deleted run's identity.
func (l *Ledger) Retention() time.Duration { return l.cfg.Retention }

// Deleted reports whether the run namespace/name was a webhook run deleted within the
// retention. It reads this replica's memory, which follows the ledger within RefreshInterval
// (and at once for what this replica wrote).
func (l *Ledger) Deleted(namespace, name string) bool {
	return l.holds(identityOf(namespace, name))
}

// holds reports whether a page within the retention has id.
func (l *Ledger) holds(id identity) bool {
	now := l.cfg.Clock()
	for _, p := range *l.pages.Load() {
		if !expired(p.day, now, l.cfg.Retention) && p.holds(id) {
			return true
		}
	}
	return false
}

// RecordRun records the deletion of run when a webhook delivery started it (the label
// workflows.centaur.dev/webhook), and returns once the ledger stores it: call it before
// deleting the run, so that no moment passes in which the run is gone and its delivery
// forgotten. It waits for the next write (within FlushInterval), for at most 30 seconds. A
// nil Ledger records nothing.
func (l *Ledger) RecordRun(ctx context.Context, run *workflowsv1alpha1.WorkflowRun) error {
	if l == nil || !isWebhookRun(run) {
		return nil
	}
	id := identityOf(run.Namespace, run.Name)
	if l.holds(id) {
		return nil
	}
	done := l.enqueue(id, true)
	ctx, cancel := context.WithTimeout(ctx, recordTimeout)
	defer cancel()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-l.stopped:
		err = errors.New("the ledger stopped")
	}
	if err != nil {
		return fmt.Errorf("record the deletion of webhook run %s/%s in the delivery ledger: %w", run.Namespace, run.Name, err)
	}
	return nil
}

// note records the deletion of the run obj, when a webhook delivery started it, at the next
// write, without waiting for it.
func (l *Ledger) note(obj metav1.Object) {
	if isWebhookRun(obj) {
		l.enqueue(identityOf(obj.GetNamespace(), obj.GetName()), false)
	}
}

// isWebhookRun reports whether a webhook delivery started the run obj.
func isWebhookRun(obj metav1.Object) bool {
	return obj.GetLabels()[workflowsv1alpha1.LabelWebhook] != ""
}

// enqueue adds id to the next write; with wait, the returned channel gets the write's result.
func (l *Ledger) enqueue(id identity, wait bool) <-chan error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[id] = true
	if !wait {
		return nil
	}
	done := make(chan error, 1)
	l.waiters = append(l.waiters, done)
	return done
}

// takePending empties the queue: the identities to write and who waits for them.
func (l *Ledger) takePending() ([]identity, []chan error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]identity, 0, len(l.pending))
	for id := range l.pending {
		ids = append(ids, id)
	}
	waiters := l.waiters
	l.pending, l.waiters = map[identity]bool{}, nil
	return ids, waiters
}

// requeue puts back identities a write failed to store, for the next one.
func (l *Ledger) requeue(ids []identity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.pending[id] = true
	}
}

// NeedLeaderElection reports false: every replica reads the ledger, and writes what it
// deletes.
func (l *Ledger) NeedLeaderElection() bool { return false }

// Start reads the ledger, then writes the recorded identities every FlushInterval and reads
// the pages that changed every RefreshInterval, until ctx ends; what is still queued then is
// written one last time.
func (l *Ledger) Start(ctx context.Context) error {
	defer close(l.stopped)
	l.refreshLogged(ctx)
	flush, refresh := time.NewTicker(l.cfg.FlushInterval), time.NewTicker(l.cfg.RefreshInterval)
	defer flush.Stop()
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			l.flush(last)
			cancel()
			return nil
		case <-flush.C:
			l.flush(ctx)
		case <-refresh.C:
			l.refreshLogged(ctx)
		}
	}
}

// flush writes the queued identities the ledger does not hold yet and tells the waiters how
// it went; what failed is queued again.
func (l *Ledger) flush(ctx context.Context) {
	ids, waiters := l.takePending()
	if len(ids) == 0 && len(waiters) == 0 {
		return
	}
	err := l.store(ctx, l.unknown(ids))
	if err != nil {
		l.requeue(ids)
		l.cfg.Logger.Error(err, "delivery_ledger_write_failed", "identities", len(ids))
	}
	for _, w := range waiters {
		w <- err
	}
}

// unknown returns those of ids the ledger does not hold.
func (l *Ledger) unknown(ids []identity) []identity {
	out := ids[:0:0]
	for _, id := range ids {
		if !l.holds(id) {
			out = append(out, id)
		}
	}
	return out
}

// store appends ids to today's pages, from the last one this replica knows, creating pages
// as they fill up.
func (l *Ledger) store(ctx context.Context, ids []identity) error {
	today := dayOf(l.cfg.Clock())
	for seq := l.openSeq(today); len(ids) > 0; seq++ {
		rest, err := l.appendRetrying(ctx, today, seq, ids)
		if err != nil {
			return err
		}
		ids = rest
	}
	return nil
}

// openSeq is the first page of pageDay that may have room, as far as this replica knows.
func (l *Ledger) openSeq(pageDay time.Time) int {
	seq := 0
	for _, p := range *l.pages.Load() {
		if !p.day.Equal(pageDay) || p.seq < seq {
			continue
		}
		seq = p.seq
		if p.full(PageCapacity) {
			seq++
		}
	}
	return seq
}

// appendRetrying is appendTo, again on a conflict with another replica's write.
func (l *Ledger) appendRetrying(ctx context.Context, pageDay time.Time, seq int, ids []identity) ([]identity, error) {
	rest := ids
	err := retry.OnError(retry.DefaultBackoff, isRace, func() error {
		var err error
		rest, err = l.appendTo(ctx, pageDay, seq, ids)
		return err
	})
	if err != nil {
		return ids, fmt.Errorf("write %s/%s of the delivery ledger: %w", l.cfg.Namespace, pageName(pageDay, seq), err)
	}
	return rest, nil
}

// isRace reports whether err says another writer got there first.
func isRace(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }

// appendTo adds ids to the page seq of pageDay, creating it when it does not exist yet, and
// returns the ids that did not fit.
func (l *Ledger) appendTo(ctx context.Context, pageDay time.Time, seq int, ids []identity) ([]identity, error) {
	cm := &corev1.ConfigMap{}
	err := l.cfg.Reader.Get(ctx, client.ObjectKey{Namespace: l.cfg.Namespace, Name: pageName(pageDay, seq)}, cm)
	if apierrors.IsNotFound(err) {
		cm = newPage(l.cfg.Namespace, pageDay, seq)
		rest, _ := appendRecords(cm, ids, PageCapacity)
		if err := l.cfg.Client.Create(ctx, cm); err != nil {
			return ids, err
		}
		return rest, l.remember(cm)
	}
	if err != nil {
		return ids, err
	}
	rest, changed := appendRecords(cm, ids, PageCapacity)
	if !changed {
		return rest, nil
	}
	if err := l.cfg.Client.Update(ctx, cm); err != nil {
		return ids, err
	}
	return rest, l.remember(cm)
}

// remember puts a page this replica wrote into its view, so that its own lookups see it at
// once.
func (l *Ledger) remember(cm *corev1.ConfigMap) error {
	written, err := decodePage(cm)
	if err != nil {
		return err
	}
	old := *l.pages.Load()
	next := make([]page, 0, len(old)+1)
	for _, p := range old {
		if p.name != written.name {
			next = append(next, p)
		}
	}
	next = append(next, written)
	l.pages.Store(&next)
	return nil
}

// refreshLogged is refresh, with its failure logged: the replica goes on with what it knew.
func (l *Ledger) refreshLogged(ctx context.Context) {
	if err := l.refresh(ctx); err != nil && ctx.Err() == nil {
		l.cfg.Logger.Error(err, "delivery_ledger_read_failed")
	}
}

// refresh reads the list of pages and those whose resourceVersion changed since this replica
// read them, and drops the pages that are gone or past the retention.
func (l *Ledger) refresh(ctx context.Context) error {
	items, err := l.listPages(ctx)
	if err != nil {
		return err
	}
	known := map[string]page{}
	for _, p := range *l.pages.Load() {
		known[p.name] = p
	}
	now := l.cfg.Clock()
	next := make([]page, 0, len(items))
	for _, item := range items {
		pageDay, _, ok := parsePageName(item.Name)
		if !ok || expired(pageDay, now, l.cfg.Retention) {
			continue
		}
		if p, ok := known[item.Name]; ok && p.resourceVersion == item.ResourceVersion {
			next = append(next, p)
			continue
		}
		p, ok, err := l.readPage(ctx, item.Name)
		if err != nil {
			return err
		}
		if ok {
			next = append(next, p)
		}
	}
	l.pages.Store(&next)
	return nil
}

// readPage reads the page name; false when it is gone, or is not a page the ledger wrote
// (which is logged and left alone).
func (l *Ledger) readPage(ctx context.Context, name string) (page, bool, error) {
	cm := &corev1.ConfigMap{}
	err := l.cfg.Reader.Get(ctx, client.ObjectKey{Namespace: l.cfg.Namespace, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return page{}, false, nil
	}
	if err != nil {
		return page{}, false, fmt.Errorf("read %s/%s of the delivery ledger: %w", l.cfg.Namespace, name, err)
	}
	p, err := decodePage(cm)
	if err != nil {
		l.cfg.Logger.Error(err, "delivery_ledger_page_unreadable")
		return page{}, false, nil
	}
	return p, true, nil
}

// listPages lists the metadata of the ledger's ConfigMaps: enough to see which changed.
func (l *Ledger) listPages(ctx context.Context) ([]metav1.PartialObjectMetadata, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMapList"))
	if err := l.cfg.Reader.List(ctx, list, client.InNamespace(l.cfg.Namespace), client.HasLabels{workflowsv1alpha1.LabelDeliveryLedger}); err != nil {
		return nil, fmt.Errorf("list the delivery ledger's ConfigMaps in %s: %w", l.cfg.Namespace, err)
	}
	return list.Items, nil
}

// prune deletes the pages past the retention.
func (l *Ledger) prune(ctx context.Context) error {
	items, err := l.listPages(ctx)
	if err != nil {
		return err
	}
	now := l.cfg.Clock()
	for _, item := range items {
		pageDay, _, ok := parsePageName(item.Name)
		if !ok || !expired(pageDay, now, l.cfg.Retention) {
			continue
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: item.Namespace, Name: item.Name}}
		if err := l.cfg.Client.Delete(ctx, cm, client.Preconditions{UID: &item.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete %s/%s of the delivery ledger, past its retention of %s: %w", item.Namespace, item.Name, l.cfg.Retention, err)
		}
		l.cfg.Logger.Info("delivery_ledger_page_pruned", "namespace", item.Namespace, "page", item.Name)
	}
	return nil
}

// Holds reads the ledger in namespace from the API server, past any replica's memory, and
// reports whether it holds the run runNamespace/runName, whatever the retention: for tests
// and for a person debugging. The webhook server asks Ledger.Deleted, which reads memory.
func Holds(ctx context.Context, reader client.Reader, namespace, runNamespace, runName string) (bool, error) {
	l := New(Config{Namespace: namespace, Reader: reader})
	items, err := l.listPages(ctx)
	if err != nil {
		return false, err
	}
	id := identityOf(runNamespace, runName)
	for _, item := range items {
		p, ok, err := l.readPage(ctx, item.Name)
		if err != nil {
			return false, err
		}
		if ok && p.holds(id) {
			return true, nil
		}
	}
	return false, nil
}
