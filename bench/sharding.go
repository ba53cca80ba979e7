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

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// shardLeaseNamespace holds the leases of the sharding figure's replicas.
const shardLeaseNamespace = "bench-shard-leases"

// Targets of the sharding figure (issue #17).
const (
	targetShardSpeedup = 1.6
	targetShardSplit   = 0.10
)

// shardFigures are the figures of sharded replicas: the same CPU-bound runs executed by one
// replica, then by several, each replica limited to one core (GOMAXPROCS=1).
type shardFigures struct {
	one, many shardPhase
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
}

// measureSharding executes cfg.shardRuns CPU-bound runs with one sharded replica, then with
// cfg.shardReplicas, each replica limited to one core, and records both.
func (h *harness) measureSharding(ctx context.Context, res *results) error {
	for _, ns := range []string{shardLeaseNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	one, err := h.shardPhase(ctx, 1)
	if err != nil {
		return fmt.Errorf("one replica: %w", err)
	}
	res.sharding.one = one
	many, err := h.shardPhase(ctx, h.cfg.shardReplicas)
	if err != nil {
		return fmt.Errorf("%d replicas: %w", h.cfg.shardReplicas, err)
	}
	res.sharding.many = many
	h.logf("sharding: %.1f steps/s with 1 replica, %.1f with %d (%.2f×); runs by shard %v",
		one.stepsPerSec, many.stepsPerSec, many.replicas, many.stepsPerSec/one.stepsPerSec, many.runs)
	return nil
}

// shardPhase starts n sharded replicas, waits until each sees all of them on the ring, creates
// the runs (unlabelled, as kubectl would: the sharder assigns them), waits for them, and
// measures; then it deletes the runs and stops the replicas, which release their leases.
func (h *harness) shardPhase(ctx context.Context, n int) (shardPhase, error) {
	p := shardPhase{replicas: n}
	ns := fmt.Sprintf("bench-shard-%d", n)
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
		m, err := h.startManagerEnv(ctx, []string{"GOMAXPROCS=1"}, "--sharding", "--shard-name="+shard,
			"--leader-elect", "--leader-election-namespace="+shardLeaseNamespace)
		if err != nil {
			return p, err
		}
		replicas[shard] = m
	}
	if err := awaitRingOf(ctx, replicas, n); err != nil {
		return p, err
	}
	runs := make([]*workflowsv1alpha1.WorkflowRun, h.cfg.shardRuns)
	input := testflows.BurnInput{Steps: h.cfg.shardSteps, CPUMillis: h.cfg.shardCPU.Milliseconds()}
	for i := range runs {
		runs[i] = newRun(ns, fmt.Sprintf("burn-%05d", i), testflows.BurnName, input)
	}
	sampler, err := h.startSampler(ctx, replicas)
	if err != nil {
		return p, err
	}
	if err := h.createRuns(ctx, runs, h.cfg.senders); err != nil {
		return p, err
	}
	done, err := h.waitAll(ctx, ns, namesOf(runs), true, time.Second)
	if err != nil {
		return p, err
	}
	steps := len(runs) * h.cfg.shardSteps
	first, last, err := stepWindow(done, h.cfg.shardSteps)
	if err != nil {
		return p, err
	}
	p.window = last.Sub(first)
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
		n, err := scrapeMetric(ctx, m.metricsURL, "centaur_workflow_step_attempts_total", `workflow="`+testflows.BurnName+`"`)
		if err != nil {
			return p, err
		}
		p.steps[shard] = int(n)
	}
	return p, h.deleteRuns(ctx, ns)
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

// shardingRows are the sharding figure's lines of the table: the speed-up, and the split.
func (r *results) shardingRows() []row {
	c, f := r.cfg, r.sharding
	speed := row{
		figure: fmt.Sprintf("completed steps/s, %d runs × %d CPU-bound steps (%s of CPU each), %d sharded replicas with GOMAXPROCS=1 each",
			c.shardRuns, c.shardSteps, fmtDur(c.shardCPU), c.shardReplicas),
		target: fmt.Sprintf("≥ %.1f× one replica", targetShardSpeedup),
	}
	split := row{
		figure: fmt.Sprintf("runs each of the %d replicas executed (of %d)", c.shardReplicas, c.shardRuns),
		limit:  fmt.Sprintf("an even split: %d each", c.shardRuns/max(c.shardReplicas, 1)),
		target: fmt.Sprintf("each within ±%.0f %%", 100*targetShardSplit),
	}
	if f.one.stepsPerSec == 0 || f.many.stepsPerSec == 0 {
		speed.measured, speed.limit, speed.ratio, speed.met = "not measured", "—", "—", "no"
		split.measured, split.ratio, split.met = "not measured", "—", "no"
		return []row{speed, split}
	}
	ratio := f.many.stepsPerSec / f.one.stepsPerSec
	speed.measured = fmt.Sprintf("%.1f steps/s", f.many.stepsPerSec)
	speed.limit = fmt.Sprintf("the same runs on 1 sharded replica: %.1f steps/s", f.one.stepsPerSec)
	speed.ratio, speed.met = fmt.Sprintf("%.2f×", ratio), yesNo(ratio >= targetShardSpeedup)
	even := float64(c.shardRuns) / float64(f.many.replicas)
	worst := 0.0
	var parts []string
	for _, shard := range slices.Sorted(maps.Keys(f.many.runs)) {
		n := f.many.runs[shard]
		worst = max(worst, abs(float64(n)-even)/even)
		parts = append(parts, fmt.Sprintf("%s: %d (%d steps)", shard, n, f.many.steps[shard]))
	}
	split.measured = strings.Join(parts, ", ")
	split.ratio = fmt.Sprintf("worst %.1f %% off", 100*worst)
	split.met = yesNo(len(f.many.runs) == f.many.replicas && worst <= targetShardSplit)
	return []row{speed, split}
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
	b.WriteString("| replicas | steps/s | window | each replica: CPU per step (busy) | kube-apiserver | etcd | benchmark | API requests per step |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range []shardPhase{f.one, f.many} {
		var reps []string
		for _, shard := range slices.Sorted(maps.Keys(p.busy)) {
			reps = append(reps, fmt.Sprintf("%s %s (%.0f %%)", shard, fmtDur(p.cpu[shard]/time.Duration(max(p.steps[shard], 1))), 100*p.busy[shard]))
		}
		fmt.Fprintf(&b, "| %d | %.1f | %s | %s | %s | %s | %s | %s |\n", p.replicas, p.stepsPerSec, fmtDur(p.window),
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
