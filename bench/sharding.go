package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// shardLeaseNamespace holds the leases of the sharding figure's replicas.
const shardLeaseNamespace = "bench-shard-leases"

// Targets of the sharding figures: the CPU-bound speed-up (issue #17), the I/O-bound speed-up
// and the splits (issue #25).
const (
	targetShardSpeedup   = 1.6
	targetShardSplit     = 0.10
	targetShardIOSpeedup = 2.5
	targetShardIOSplit   = 0.05
)

// shardFigures are the figures of sharded replicas: the same CPU-bound runs executed by one
// replica, then by several, each replica limited to one core (GOMAXPROCS=1); and the same runs
// of steps that wait on I/O, each replica limited to a few executions at once.
type shardFigures struct {
	one, many     shardPhase
	ioOne, ioMany shardPhase
}

// shardWorkload is what a sharding figure's replicas execute and how they are limited.
type shardWorkload struct {
	// namespace prefixes the phase's namespace (NAMESPACE-REPLICAS); prefix names its runs.
	namespace, prefix string
	workflow          string
	input             any
	steps             int
	// env and args are added to each replica's environment and flags.
	env, args []string
}

// cpuWorkload is the CPU-bound figure's: steps that burn CPU, replicas of one core each.
func (c config) cpuWorkload() shardWorkload {
	return shardWorkload{namespace: "bench-shard", prefix: "burn", workflow: testflows.BurnName,
		input: testflows.BurnInput{Steps: c.shardSteps, CPUMillis: c.shardCPU.Milliseconds()}, steps: c.shardSteps,
		env: []string{"GOMAXPROCS=1"}}
}

// ioWorkload is the I/O-bound figure's: steps that wait, replicas of a few executions each.
func (c config) ioWorkload() shardWorkload {
	return shardWorkload{namespace: "bench-io", prefix: "io", workflow: testflows.WaitName,
		input: testflows.WaitInput{Steps: c.shardSteps, WaitMillis: c.shardWait.Milliseconds()}, steps: c.shardSteps,
		args: []string{fmt.Sprintf("--max-concurrent-reconciles=%d", c.shardExecutions)}}
}

// shardPhase is what one set of replicas did with the runs.
type shardPhase struct {
	// replicas is how many sharded replicas executed the runs.
	replicas int
	// stepsPerSec is completed steps/s from the first step's start to the last step's end.
	stepsPerSec float64
	// window is that span.
	window time.Duration
	// runs counts the runs each replica finished (the shard label at the end), by shard.
	runs map[string]int
	// steps counts the step attempts each replica's metrics report, by shard.
	steps map[string]int
	// cpu is the CPU time each process used over the phase: the replicas by shard,
	// kube-apiserver, etcd and the benchmark.
	cpu map[string]time.Duration
	// busy is the share of one core each replica used over the phase, by shard.
	busy map[string]float64
	// requests are the API requests per step.
	requests string
	// placed is when the last run got its shard label, from the window's start (the first
	// step's start): positive when the sharder's placement ends inside the window.
	placed time.Duration
}

// measureSharding executes cfg.shardRuns CPU-bound runs with one sharded replica, then with
// cfg.shardReplicas, each replica limited to one core; then as many runs of steps that wait,
// each replica limited to cfg.shardExecutions executions; and records all four phases.
func (h *harness) measureSharding(ctx context.Context, res *results) error {
	if err := h.ensureNamespace(ctx, shardLeaseNamespace); err != nil {
		return err
	}
	var err error
	if res.sharding.one, res.sharding.many, err = h.shardPhases(ctx, h.cfg.cpuWorkload()); err != nil {
		return err
	}
	res.sharding.ioOne, res.sharding.ioMany, err = h.shardPhases(ctx, h.cfg.ioWorkload())
	return err
}

// shardPhases executes w's runs with one sharded replica, then with cfg.shardReplicas.
func (h *harness) shardPhases(ctx context.Context, w shardWorkload) (one, many shardPhase, err error) {
	if one, err = h.shardPhase(ctx, w, 1); err != nil {
		return one, many, fmt.Errorf("%s, one replica: %w", w.workflow, err)
	}
	if many, err = h.shardPhase(ctx, w, h.cfg.shardReplicas); err != nil {
		return one, many, fmt.Errorf("%s, %d replicas: %w", w.workflow, h.cfg.shardReplicas, err)
	}
	h.logf("sharding, %s: %.1f steps/s with 1 replica, %.1f with %d (%.2f×); runs by shard %v; placed %s into the window",
		w.workflow, one.stepsPerSec, many.stepsPerSec, many.replicas, many.stepsPerSec/one.stepsPerSec, many.runs, fmtDur(many.placed))
	return one, many, nil
}

// shardPhase starts n sharded replicas, waits until each sees all of them on the ring, creates
// w's runs (unlabelled, as kubectl would: the sharder assigns them), notes when the last one
// got its shard, waits for them, and measures; then it deletes the runs and stops the
// replicas, which release their leases.
func (h *harness) shardPhase(ctx context.Context, w shardWorkload, n int) (shardPhase, error) {
	p := shardPhase{replicas: n}
	ns := fmt.Sprintf("%s-%d", w.namespace, n)
	if err := h.ensureNamespace(ctx, ns); err != nil {
		return p, err
	}
	replicas := make(map[string]*managerProc, n)
	defer func() {
		for _, m := range replicas {
			m.stop()
		}
	}()
	for i := range n {
		shard := fmt.Sprintf("bench-%d", i)
		args := append([]string{"--sharding", "--shard-name=" + shard, "--leader-elect", "--leader-election-namespace=" + shardLeaseNamespace}, w.args...)
		m, err := h.startManagerEnv(ctx, w.env, args...)
		if err != nil {
			return p, err
		}
		replicas[shard] = m
	}
	if err := awaitRingOf(ctx, replicas, n); err != nil {
		return p, err
	}
	runs := make([]*workflowsv1alpha1.WorkflowRun, h.cfg.shardRuns)
	for i := range runs {
		runs[i] = newRun(ns, fmt.Sprintf("%s-%05d", w.prefix, i), w.workflow, w.input)
	}
	sampler, err := h.startSampler(ctx, replicas)
	if err != nil {
		return p, err
	}
	if err := h.createRuns(ctx, runs, h.cfg.senders); err != nil {
		return p, err
	}
	placed, err := h.awaitPlaced(ctx, ns)
	if err != nil {
		return p, err
	}
	done, err := h.waitAll(ctx, ns, namesOf(runs), true, time.Second)
	if err != nil {
		return p, err
	}
	steps := len(runs) * w.steps
	first, last, err := stepWindow(done, w.steps)
	if err != nil {
		return p, err
	}
	p.window, p.placed = last.Sub(first), placed.Sub(first)
	p.stepsPerSec = float64(steps) / p.window.Seconds()
	if p.cpu, p.busy, p.requests, err = sampler.stop(ctx, steps); err != nil {
		return p, err
	}
	p.runs = map[string]int{}
	for i := range done {
		p.runs[done[i].Labels[workflowsv1alpha1.LabelShard]]++
	}
	p.steps = map[string]int{}
	for shard, m := range replicas {
		n, err := scrapeMetric(ctx, m.metricsURL, "centaur_workflow_step_attempts_total", `workflow="`+w.workflow+`"`)
		if err != nil {
			return p, err
		}
		p.steps[shard] = int(n)
	}
	return p, h.deleteRuns(ctx, ns)
}

// awaitPlaced waits until every run of ns has a shard label, listing the runs' metadata from
// the API server's watch cache every 50 ms, and returns when it saw that.
func (h *harness) awaitPlaced(ctx context.Context, ns string) (time.Time, error) {
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(workflowsv1alpha1.GroupVersion.WithKind("WorkflowRunList"))
		if err := h.client.List(ctx, list, client.InNamespace(ns), cachedList()); err != nil {
			return time.Time{}, fmt.Errorf("list the runs of %s: %w", ns, err)
		}
		if !slices.ContainsFunc(list.Items, func(r metav1.PartialObjectMetadata) bool { return r.Labels[workflowsv1alpha1.LabelShard] == "" }) {
			return time.Now(), nil
		}
		if err := testcluster.Sleep(ctx, 50*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
}

// awaitRingOf waits until every replica reports n live shards on its ring.
func awaitRingOf(ctx context.Context, replicas map[string]*managerProc, n int) error {
	deadline := time.Now().Add(time.Minute)
	for shard, m := range replicas {
		for {
			members, err := scrapeMetric(ctx, m.metricsURL, "centaur_shard_ring_members", "")
			if err == nil && int(members) == n {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("replica %s does not see %d shards on its ring within a minute (last: %v, %v)", shard, n, members, err)
			}
			if err := testcluster.Sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// sampler measures the CPU time of the replicas, kube-apiserver, etcd and the benchmark, and
// the API requests, between its start and stop.
type sampler struct {
	h       *harness
	names   []string
	pids    []int
	start   []time.Duration
	began   time.Time
	reqs    map[string]float64
	workers map[string]bool
}

// startSampler starts measuring.
func (h *harness) startSampler(ctx context.Context, replicas map[string]*managerProc) (*sampler, error) {
	s := &sampler{h: h, workers: map[string]bool{}}
	for shard, m := range replicas {
		s.names, s.pids = append(s.names, shard), append(s.pids, m.PID())
		s.workers[shard] = true
	}
	api, etcd, err := h.controlPlanePIDs()
	if err != nil {
		return nil, err
	}
	s.names = append(s.names, "kube-apiserver", "etcd", "benchmark")
	s.pids = append(s.pids, api, etcd, os.Getpid())
	if s.reqs, err = h.apiRequests(ctx); err != nil {
		return nil, err
	}
	s.began = time.Now()
	for _, pid := range s.pids {
		s.start = append(s.start, testcluster.CPUTime(pid))
	}
	return s, nil
}

// stop returns the CPU time each process used, each replica's share of a core over the time
// measured, and the API requests per step over steps steps.
func (s *sampler) stop(ctx context.Context, steps int) (map[string]time.Duration, map[string]float64, string, error) {
	wall := time.Since(s.began)
	used, busy := map[string]time.Duration{}, map[string]float64{}
	for i, pid := range s.pids {
		used[s.names[i]] = testcluster.CPUTime(pid) - s.start[i]
		if s.workers[s.names[i]] {
			busy[s.names[i]] = used[s.names[i]].Seconds() / wall.Seconds()
		}
	}
	after, err := s.h.apiRequests(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	return used, busy, describeRequests(requestsPerStep(s.reqs, after, steps)), nil
}

// scrapeMetric sums the samples of metric name on a Prometheus endpoint whose labels contain
// filter (every sample when empty).
func scrapeMetric(ctx context.Context, url, name, filter string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("build GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var sum float64
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		if filter != "" && !strings.Contains(line, filter) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, lines.Err()
}

// shardingRows are the sharding figures' lines of the table: for the CPU-bound runs and for the
// runs that wait, the speed-up and the split.
func (r *results) shardingRows() []row {
	c, f := r.cfg, r.sharding
	cpu := shardRows(c, f.one, f.many,
		fmt.Sprintf("completed steps/s, %d runs × %d CPU-bound steps (%s of CPU each), %d sharded replicas with GOMAXPROCS=1 each",
			c.shardRuns, c.shardSteps, fmtDur(c.shardCPU), c.shardReplicas),
		fmt.Sprintf("runs each of the %d replicas executed (of %d), CPU-bound figure", c.shardReplicas, c.shardRuns),
		targetShardSpeedup, targetShardSplit)
	io := shardRows(c, f.ioOne, f.ioMany,
		fmt.Sprintf("completed steps/s, %d runs × %d steps that wait %s on I/O, %d sharded replicas with --max-concurrent-reconciles=%d each (placement inside the window)",
			c.shardRuns, c.shardSteps, fmtDur(c.shardWait), c.shardReplicas, c.shardExecutions),
		fmt.Sprintf("runs each of the %d replicas executed (of %d), I/O-bound figure", c.shardReplicas, c.shardRuns),
		targetShardIOSpeedup, targetShardIOSplit)
	return append(cpu, io...)
}

// shardRows are one sharding figure's speed-up row (many replicas over one, judged against
// speedup) and its split row (runs executed by each replica, each judged within split of even).
func shardRows(c config, one, many shardPhase, speedFigure, splitFigure string, speedup, split float64) []row {
	speed := row{figure: speedFigure, target: fmt.Sprintf("≥ %.1f× one replica", speedup)}
	even := row{
		figure: splitFigure,
		limit:  fmt.Sprintf("an even split: %d each", c.shardRuns/max(c.shardReplicas, 1)),
		target: fmt.Sprintf("each within ±%.0f %%", 100*split),
	}
	if one.stepsPerSec == 0 || many.stepsPerSec == 0 {
		speed.measured, speed.limit, speed.ratio, speed.met = "not measured", "—", "—", "no"
		even.measured, even.ratio, even.met = "not measured", "—", "no"
		return []row{speed, even}
	}
	ratio := many.stepsPerSec / one.stepsPerSec
	speed.measured = fmt.Sprintf("%.1f steps/s", many.stepsPerSec)
	speed.limit = fmt.Sprintf("the same runs on 1 sharded replica: %.1f steps/s", one.stepsPerSec)
	speed.ratio, speed.met = fmt.Sprintf("%.2f×", ratio), yesNo(ratio >= speedup)
	mean := float64(c.shardRuns) / float64(many.replicas)
	worst := 0.0
	var parts []string
	for _, shard := range slices.Sorted(maps.Keys(many.runs)) {
		n := many.runs[shard]
		worst = max(worst, abs(float64(n)-mean)/mean)
		parts = append(parts, fmt.Sprintf("%s: %d (%d steps)", shard, n, many.steps[shard]))
	}
	even.measured = strings.Join(parts, ", ")
	even.ratio = fmt.Sprintf("worst %.1f %% off", 100*worst)
	even.met = yesNo(len(many.runs) == many.replicas && worst <= split)
	return []row{speed, even}
}

// shardingNotes are the CPU per step of each process in both phases, and what the ratio would
// be with a core per replica.
func (r *results) shardingNotes() string {
	f := r.sharding
	if f.one.stepsPerSec == 0 || f.many.stepsPerSec == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\nSharding: CPU time per step by process (each replica's over the steps it executed, with its share of its one core over the phase; ")
	b.WriteString("the others' over all steps):\n\n")
	b.WriteString("| figure | replicas | steps/s | window | last run placed, from the window's start | each replica: CPU per step (busy) | kube-apiserver | etcd | benchmark | API requests per step |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range []struct {
		figure string
		shardPhase
	}{{"CPU-bound", f.one}, {"CPU-bound", f.many}, {"I/O-bound", f.ioOne}, {"I/O-bound", f.ioMany}} {
		if p.stepsPerSec == 0 {
			continue
		}
		var reps []string
		for _, shard := range slices.Sorted(maps.Keys(p.busy)) {
			reps = append(reps, fmt.Sprintf("%s %s (%.0f %%)", shard, fmtDur(p.cpu[shard]/time.Duration(max(p.steps[shard], 1))), 100*p.busy[shard]))
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f | %s | %s | %s | %s | %s | %s | %s |\n", p.figure, p.replicas, p.stepsPerSec, fmtDur(p.window), fmtPlaced(p.placed),
			strings.Join(reps, "; "), fmtDur(p.perStep("kube-apiserver")), fmtDur(p.perStep("etcd")), fmtDur(p.perStep("benchmark")), p.requests)
	}
	one, many := f.one.replicaCPU(), f.many.replicaCPU()
	projected := float64(f.many.replicas) * one.Seconds() / many.Seconds()
	fmt.Fprintf(&b, "\nWith a core per replica (and kube-apiserver and etcd on cores of their own), steps/s would grow with the replicas' cores: "+
		"%d × %s / %s = %.2f× one replica (the replicas' CPU per step with one replica, then with %d). "+
		"Here %d replicas share the machine's %d cores with kube-apiserver, etcd and the benchmark.\n",
		f.many.replicas, fmtDur(one), fmtDur(many), projected, f.many.replicas, f.many.replicas, runtime.NumCPU())
	return b.String()
}

// fmtPlaced says when the last run was placed, from the window's start.
func fmtPlaced(d time.Duration) string {
	if d < 0 {
		return fmtDur(-d) + " before it"
	}
	return fmtDur(d)
}

// perStep is the CPU time of process name per step of the phase.
func (p shardPhase) perStep(name string) time.Duration {
	total := 0
	for _, n := range p.steps {
		total += n
	}
	return p.cpu[name] / time.Duration(max(total, 1))
}

// replicaCPU is the replicas' CPU time per step they executed: all replicas' CPU over all
// steps.
func (p shardPhase) replicaCPU() time.Duration {
	var used time.Duration
	total := 0
	for shard, n := range p.steps {
		used += p.cpu[shard]
		total += n
	}
	return used / time.Duration(max(total, 1))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
