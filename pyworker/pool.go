package pyworker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/centaur-dev/workflow-operator/python"
)

// Defaults of Config.
const (
	DefaultPython          = "python3"
	DefaultWorkers         = 2
	DefaultCacheRuns       = 1000
	DefaultCacheRSSBytes   = 128 << 20
	DefaultHandlerDeadline = 10 * time.Second
	DefaultStartTimeout    = 30 * time.Second
)

// Config configures a Pool; zero fields take the defaults.
type Config struct {
	// Python is the interpreter, a path or a name looked up in PATH (--python-interpreter).
	Python string
	// Workers is the number of worker processes (--python-workers).
	Workers int
	// PackageDir holds the api and centaur_worker packages; empty extracts the copy embedded
	// in the manager into a temporary directory.
	PackageDir string
	// CacheRuns bounds the suspended handlers one worker keeps (--python-cache-runs).
	CacheRuns int
	// CacheRSSBytes makes a worker drop kept handlers, least recently used first, while its
	// resident memory is above it (--python-cache-rss-bytes); negative: no bound.
	CacheRSSBytes int64
	// HandlerDeadline bounds handler code between two primitives, and a file's top level
	// (--python-handler-deadline).
	HandlerDeadline time.Duration
	// StartTimeout bounds a worker's start.
	StartTimeout time.Duration
	// Logger receives the workers' output and their starts and exits.
	Logger logr.Logger
}

func (c Config) withDefaults() Config {
	if c.Python == "" {
		c.Python = DefaultPython
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.CacheRuns <= 0 {
		c.CacheRuns = DefaultCacheRuns
	}
	if c.CacheRSSBytes == 0 {
		c.CacheRSSBytes = DefaultCacheRSSBytes
	}
	if c.CacheRSSBytes < 0 {
		c.CacheRSSBytes = 0
	}
	if c.HandlerDeadline <= 0 {
		c.HandlerDeadline = DefaultHandlerDeadline
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

// ErrClosed is returned once the pool is closed.
var ErrClosed = errors.New("the Python worker pool is closed")

// Pool runs the worker processes. It is safe for concurrent use.
type Pool struct {
	cfg Config
	log logr.Logger

	// slotMu serialise the start of each slot's worker.
	slotMu []sync.Mutex

	mu      sync.Mutex
	slots   []*worker
	all     map[*worker]bool // every live worker, draining ones included
	kills   map[string]int   // run uid -> workers its handler code killed
	closed  bool
	pkgDir  string
	tempDir string

	metrics poolMetrics
}

// New returns a pool; workers start on first use.
func New(cfg Config) *Pool {
	cfg = cfg.withDefaults()
	return &Pool{cfg: cfg, log: cfg.Logger, slotMu: make([]sync.Mutex, cfg.Workers), slots: make([]*worker, cfg.Workers),
		all: map[*worker]bool{}, kills: map[string]int{}, metrics: newPoolMetrics()}
}

// Config returns the pool's configuration, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

// packageDir returns the directory of the Python packages, extracting the embedded copy the
// first time when none is configured.
func (p *Pool) packageDir() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pkgDir != "" {
		return p.pkgDir, nil
	}
	if p.cfg.PackageDir != "" {
		p.pkgDir = p.cfg.PackageDir
		return p.pkgDir, nil
	}
	dir, err := os.MkdirTemp("", "centaur-python-")
	if err != nil {
		return "", fmt.Errorf("make a directory for the Python package: %w", err)
	}
	if err := python.Extract(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	p.pkgDir, p.tempDir = dir, dir
	return dir, nil
}

// slotOf routes a run (or a revision, for loads) to a worker slot.
func (p *Pool) slotOf(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(p.slots)))
}

// workerFor returns the live worker of key's slot, starting one when there is none.
func (p *Pool) workerFor(ctx context.Context, key string) (*worker, int, error) {
	slot := p.slotOf(key)
	p.slotMu[slot].Lock()
	defer p.slotMu[slot].Unlock()
	p.mu.Lock()
	w, closed := p.slots[slot], p.closed
	p.mu.Unlock()
	if closed {
		return nil, slot, ErrClosed
	}
	if w != nil {
		return w, slot, nil
	}
	w, err := p.start(ctx)
	if err != nil {
		return nil, slot, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		w.kill("the pool closed")
		w.goroutines.Wait()
		return nil, slot, ErrClosed
	}
	p.slots[slot] = w
	p.all[w] = true
	p.metrics.starts.Inc()
	p.mu.Unlock()
	return w, slot, nil
}

// retire forgets a worker that died.
func (p *Pool) retire(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.slots {
		if s == w {
			p.slots[i] = nil
		}
	}
	delete(p.all, w)
	p.metrics.exits.WithLabelValues(exitKind(w)).Inc()
}

// exitKind classifies a worker's exit for the metrics.
func exitKind(w *worker) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.draining:
		return "recycled"
	case w.exitWhy != "":
		return "killed"
	default:
		return "died"
	}
}

// recycle takes w out of service: new sessions go to a new worker, and w is stopped once its
// sessions ended. A step function that ran past its timeout is still running on one of w's
// threads; only a new process frees it.
func (p *Pool) recycle(w *worker, why string) {
	p.mu.Lock()
	for i, s := range p.slots {
		if s == w {
			p.slots[i] = nil
		}
	}
	p.mu.Unlock()
	w.mu.Lock()
	w.draining = true
	if w.exitWhy == "" {
		w.exitWhy = "recycled: " + why
	}
	idle := len(w.sessions) == 0
	w.mu.Unlock()
	if idle {
		_ = w.cmd.Process.Kill()
	}
}

// blame counts a worker killed by uid's handler code.
func (p *Pool) blame(uid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kills[uid]++
	p.metrics.blamed.Inc()
}

// Kills returns how many workers the handler code of run uid killed or ran past the deadline.
func (p *Pool) Kills(uid string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills[uid]
}

// Forget drops what the pool counts of run uid, once the run finished.
func (p *Pool) Forget(uid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.kills, uid)
}

// Load imports a revision in a worker and returns what the file declares, or the *LoadError
// that says why it does not load: a top level past the handler deadline, or one that took its
// worker down, is the file's problem here. The error is for a worker that could not be used.
func (p *Pool) Load(ctx context.Context, req LoadRequest) (*Meta, *LoadError, error) {
	w, _, err := p.workerFor(ctx, req.Digest)
	if err != nil {
		return nil, nil, err
	}
	meta, le, err := w.load(ctx, req, p.cfg.HandlerDeadline)
	var exited *WorkerExitedError
	switch {
	case errors.Is(err, errDeadline):
		return nil, &LoadError{Reason: ReasonLoadFailed, File: req.Dir + "/" + req.Bundle.Entry, Message: fmt.Sprintf(
			"the file's top level ran for more than %s (--python-handler-deadline): move slow work into a step", p.cfg.HandlerDeadline)}, nil
	case errors.As(err, &exited):
		return nil, &LoadError{Reason: ReasonLoadFailed, File: req.Dir + "/" + req.Bundle.Entry, Message: "the Python worker exited while it imported the file: " + exited.Reason}, nil
	}
	return meta, le, err
}

// load imports a revision in w, its top level bounded by deadline (zero: by the caller's turn
// clock). A worker that died or was killed meanwhile is a *WorkerExitedError, one killed for
// deadline errDeadline.
func (w *worker) load(ctx context.Context, req LoadRequest, deadline time.Duration) (*Meta, *LoadError, error) {
	bundle := req.Bundle
	f := &frame{Op: "load", Digest: req.Digest, Dir: req.Dir, Bundle: &bundle}
	if req.Revision != "" {
		f.Revision = &req.Revision
	}
	answer, err := w.request(ctx, f, deadline)
	switch {
	case err != nil:
		return nil, nil, err
	case answer.Op == "load_failed":
		le := &LoadError{}
		if err := jsonUnmarshal(answer.Error, le); err != nil {
			return nil, nil, fmt.Errorf("read the worker's load error: %w", err)
		}
		return nil, le, nil
	case answer.Workflow == nil:
		return nil, nil, fmt.Errorf("the worker answered load with %q and no workflow", answer.Op)
	}
	w.mu.Lock()
	w.revisions[req.Digest] = true
	w.mu.Unlock()
	return answer.Workflow, nil, nil
}

// Begin opens a session for one execution of run uid, on the worker of the run's slot.
// logger receives the handler's ctx.log lines.
func (p *Pool) Begin(ctx context.Context, uid string, logger *slog.Logger) (*Session, error) {
	w, _, err := p.workerFor(ctx, uid)
	if err != nil {
		return nil, err
	}
	s := &Session{w: w, uid: uid, logger: logger, handler: make(chan *frame, 2), steps: map[stepKey]chan *frame{}, gone: make(chan struct{})}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deathErr != nil {
		return nil, w.deathErr
	}
	w.nextID++
	s.id = w.nextID
	w.sessions[s.id] = s
	return s, nil
}

// PIDs returns the process ids of the live workers, without asking them anything (a worker
// busy with handler code answers nothing until it is done).
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, 0, len(p.all))
	for w := range p.all {
		pids = append(pids, w.pid)
	}
	return pids
}

// WorkerInfo describes a live worker.
type WorkerInfo struct {
	PID   int
	Stats Stats
}

// Workers returns the live workers with their figures, for benchmarks and tests.
func (p *Pool) Workers(ctx context.Context) ([]WorkerInfo, error) {
	p.mu.Lock()
	workers := make([]*worker, 0, len(p.all))
	for w := range p.all {
		workers = append(workers, w)
	}
	p.mu.Unlock()
	out := make([]WorkerInfo, 0, len(workers))
	for _, w := range workers {
		answer, err := w.request(ctx, &frame{Op: "stats"}, 0)
		if err != nil {
			return nil, fmt.Errorf("stats of Python worker %d: %w", w.pid, err)
		}
		info := WorkerInfo{PID: w.pid}
		if answer.Stats != nil {
			info.Stats = *answer.Stats
		}
		out = append(out, info)
	}
	return out, nil
}

// Close kills every worker and waits for them to exit.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	workers := make([]*worker, 0, len(p.all))
	for w := range p.all {
		workers = append(workers, w)
	}
	tempDir := p.tempDir
	p.mu.Unlock()
	for _, w := range workers {
		w.kill("the manager is stopping")
	}
	for _, w := range workers {
		w.goroutines.Wait()
	}
	if tempDir != "" {
		os.RemoveAll(tempDir)
	}
}

// poolMetrics count what the pool does, for Prometheus.
type poolMetrics struct {
	starts   prometheus.Counter
	exits    *prometheus.CounterVec
	blamed   prometheus.Counter
	cache    *prometheus.CounterVec
	replayed prometheus.Counter
}

func newPoolMetrics() poolMetrics {
	return poolMetrics{
		starts: prometheus.NewCounter(prometheus.CounterOpts{Name: "centaur_python_worker_starts_total",
			Help: "Python worker processes started."}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "centaur_python_worker_exits_total",
			Help: "Python worker processes that exited, by kind: died (crashed, or killed from outside), killed (past a deadline, or at shutdown), recycled (after a step ran past its timeout)."}, []string{"kind"}),
		blamed: prometheus.NewCounter(prometheus.CounterOpts{Name: "centaur_python_worker_kills_by_runs_total",
			Help: "Workers lost while a run's handler code was running on them (each counts against that run's --python-max-worker-kills)."}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "centaur_python_handler_cache_total",
			Help: "Executions of Python runs by whether the worker still held the run's suspended handler (hit: no replay) or replayed it from the journal (miss)."}, []string{"result"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "centaur_python_replayed_turns_total",
			Help: "Turns of Python handlers answered from the journal while replaying after a cache miss; a hit replays none."}),
	}
}

// Describe implements prometheus.Collector.
func (p *Pool) Describe(ch chan<- *prometheus.Desc) {
	p.metrics.starts.Describe(ch)
	p.metrics.exits.Describe(ch)
	p.metrics.blamed.Describe(ch)
	p.metrics.cache.Describe(ch)
	p.metrics.replayed.Describe(ch)
}

// Collect implements prometheus.Collector.
func (p *Pool) Collect(ch chan<- prometheus.Metric) {
	p.metrics.starts.Collect(ch)
	p.metrics.exits.Collect(ch)
	p.metrics.blamed.Collect(ch)
	p.metrics.cache.Collect(ch)
	p.metrics.replayed.Collect(ch)
}

// Counts are the pool's figures so far, for tests and benchmarks.
type Counts struct {
	// Hits and Misses count executions whose handler the worker kept, and those it replayed.
	Hits, Misses int
	// ReplayedTurns counts turns answered from the journal.
	ReplayedTurns int
}

// Counts returns the pool's figures so far.
func (p *Pool) Counts() Counts {
	return Counts{Hits: int(counterValue(p.metrics.cache.WithLabelValues("hit"))), Misses: int(counterValue(p.metrics.cache.WithLabelValues("miss"))),
		ReplayedTurns: int(counterValue(p.metrics.replayed))}
}

// CountReplayedTurn counts a turn answered from the journal (a replay of the handler from the
// top, after a cache miss).
func (p *Pool) CountReplayedTurn() { p.metrics.replayed.Inc() }
