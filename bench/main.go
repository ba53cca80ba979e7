// Command bench measures the durable engine against the physical limit of the API server it
// runs on. It starts the real control plane from bin/k8s (etcd with fsync on), runs the real
// manager as its own process (hack/testmanager: the manager with the benchmark's workflows
// added), and prints a Markdown table in which every figure stands beside the raw limit it is
// measured against, measured in the same run on the same API server: sequential and parallel
// status updates, and creates, from a plain client.
//
// `make bench` runs it at full size and writes the table into docs/benchmarks.md; -smoke runs
// tiny sizes without enforcing targets, as `make test` does through bench_test.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/pyworker"
)

// config is the benchmark's sizes and switches.
type config struct {
	seqSteps     int
	shortSteps   int
	hugeSteps    int
	blobSteps    int
	blobBytes    int
	batchedSteps int
	fileSteps    int
	// The Python figures (figure files): the long run of the per-step ratio (beside a run of
	// shortSteps), the run replayed cold after a manager restart and its sleep, the
	// nightly_report runs kept by the workers, and the managers' --python-workers.
	pyLongSteps   int
	pyReplaySteps int
	pyRest        time.Duration
	pyKeptRuns    int
	pyWorkers     int
	parallelRuns  int
	parallelSteps int
	parallelism   int
	deliveries    int
	senders       int
	starts        int
	sleepRuns     int
	sleepFor      time.Duration
	memoryRuns    int
	schedules     int
	memoryInput   int
	shardRuns     int
	shardSteps    int
	shardCPU      time.Duration
	shardReplicas int
	// shardWait is how long each step of the I/O-bound sharding figure waits, and
	// shardExecutions each of its replicas' --max-concurrent-reconciles.
	shardWait       time.Duration
	shardExecutions int
	repeat          int
	timeout         time.Duration

	// floodDeliveries unauthenticated 1 MiB deliveries from floodSenders senders at once, with
	// signed deliveries at floodSignedRate/s meanwhile (the flood figure).
	floodDeliveries int
	floodSenders    int
	floodSignedRate float64
	// fanOutNames is the length of the list of names of the flood figure's fan_out run, which
	// crosses --max-children-per-run.
	fanOutNames int
	// fanOutCap, when set, is the fan-out manager's --max-children-per-run (the quick run's
	// small one keeps the cap's crossing and spares a thousand children).
	fanOutCap int

	// figures is the set of figures to measure (all when empty).
	figures map[string]bool

	smoke         bool
	unsafeNoFsync bool
	race          bool
	managerBin    string
	temporalPeer  string
	profileDir    string
	doc           string
	workDir       string
}

// allFigures names the figures, in the order they are measured.
var allFigures = []string{"sequential", "long", "batched", "files", "parallel", "lateness", "tracing", "blobs", "webhooks", "starts", "schedules", "memory", "sharding", "flood"}

// wants reports whether figure is to be measured.
func (c config) wants(figure string) bool { return len(c.figures) == 0 || c.figures[figure] }

// fullConfig is the size the targets are stated for.
func fullConfig() config {
	return config{
		seqSteps: 1000, shortSteps: 50, hugeSteps: 20000,
		blobSteps: 800, blobBytes: 256 << 10, batchedSteps: 1000, fileSteps: 200,
		pyLongSteps: 1000, pyReplaySteps: 1000, pyRest: 4 * time.Second, pyKeptRuns: 1000, pyWorkers: pyworker.DefaultWorkers,
		parallelRuns: 500, parallelSteps: 10, parallelism: 16,
		deliveries: 2000, senders: 16, starts: 100, floodDeliveries: 2000, floodSenders: 300, floodSignedRate: 5, fanOutNames: 100_000,
		sleepRuns: 500, sleepFor: 2 * time.Second,
		memoryRuns: 2000, memoryInput: 64 << 10, schedules: 1000, repeat: 3, timeout: 10 * time.Minute,
		temporalPeer: defaultTemporalPeer,
		shardRuns:    600, shardSteps: 4, shardCPU: 20 * time.Millisecond, shardReplicas: 3,
		shardWait: 200 * time.Millisecond, shardExecutions: 4,
	}
}

// smokeConfig is small enough for `make test`: every figure is measured, none is judged.
func smokeConfig() config {
	return config{
		seqSteps: 40, shortSteps: 5, hugeSteps: 100,
		blobSteps: 4, blobBytes: 64 << 10, batchedSteps: 150, fileSteps: 10,
		pyLongSteps: 40, pyReplaySteps: 20, pyRest: 3 * time.Second, pyKeptRuns: 20, pyWorkers: pyworker.DefaultWorkers,
		parallelRuns: 20, parallelSteps: 3, parallelism: 4,
		deliveries: 40, senders: 4, starts: 5, floodDeliveries: 50, floodSenders: 25, floodSignedRate: 5, fanOutNames: 60, fanOutCap: 20,
		sleepRuns: 10, sleepFor: time.Second,
		memoryRuns: 30, memoryInput: 4 << 10, schedules: 10, repeat: 1, timeout: 2 * time.Minute, smoke: true,
		shardRuns: 24, shardSteps: 2, shardCPU: 5 * time.Millisecond, shardReplicas: 3,
		shardWait: 20 * time.Millisecond, shardExecutions: 2,
	}
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, os.Stderr)
	if res != nil {
		fmt.Println(res.markdown())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if !cfg.smoke && !res.allMet() {
		fmt.Fprintln(os.Stderr, "bench: some targets were missed; see the notes under the table")
	}
}

// parseFlags reads the command line into a config. -smoke chooses the smoke sizes as the
// defaults; the other flags override single sizes.
func parseFlags(args []string) (config, error) {
	cfg := fullConfig()
	if hasSmoke(args) {
		cfg = smokeConfig()
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Bool("smoke", cfg.smoke, "Tiny sizes, no targets enforced (what `make test` runs).")
	fs.IntVar(&cfg.seqSteps, "seq-steps", cfg.seqSteps, "Steps of the sequential run (the long run of the per-step ratio).")
	fs.IntVar(&cfg.shortSteps, "short-steps", cfg.shortSteps, "Steps of the short run the per-step ratios divide by.")
	fs.IntVar(&cfg.hugeSteps, "huge-steps", cfg.hugeSteps, "Steps of the very long run (figure long).")
	fs.IntVar(&cfg.blobSteps, "blob-steps", cfg.blobSteps, "Steps of the run recording large results (figure blobs).")
	fs.IntVar(&cfg.blobBytes, "blob-bytes", cfg.blobBytes, "Size of each of those results.")
	fs.IntVar(&cfg.batchedSteps, "batched-steps", cfg.batchedSteps, "Batched no-op steps of the batched run, and Temporal local activities of its peer.")
	fs.IntVar(&cfg.fileSteps, "file-steps", cfg.fileSteps, "Steps of the sequential runs of the workflow-file figure (Go and file alike).")
	fs.IntVar(&cfg.pyLongSteps, "py-long-steps", cfg.pyLongSteps, "Steps of the long Python run whose per-step time is compared with a run of -short-steps (figure files).")
	fs.IntVar(&cfg.pyReplaySteps, "py-replay-steps", cfg.pyReplaySteps, "Steps of the Python run replayed cold after a manager restart (figure files).")
	fs.DurationVar(&cfg.pyRest, "py-rest", cfg.pyRest, "How long that run sleeps after its steps; the manager is restarted meanwhile.")
	fs.IntVar(&cfg.pyKeptRuns, "py-kept-runs", cfg.pyKeptRuns, "nightly_report runs the Python workers keep at their settle sleep in the worker RSS figure (figure files).")
	fs.IntVar(&cfg.pyWorkers, "python-workers", cfg.pyWorkers, "The managers' --python-workers.")
	fs.IntVar(&cfg.parallelRuns, "parallel-runs", cfg.parallelRuns, "Runs of the parallel figure.")
	fs.IntVar(&cfg.parallelSteps, "parallel-steps", cfg.parallelSteps, "Steps of each parallel run.")
	fs.IntVar(&cfg.parallelism, "parallelism", cfg.parallelism, "The manager's --max-concurrent-reconciles, and the raw parallel writers.")
	fs.IntVar(&cfg.deliveries, "deliveries", cfg.deliveries, "Signed webhook deliveries (and raw creates).")
	fs.IntVar(&cfg.senders, "senders", cfg.senders, "Concurrent webhook senders (and raw creators).")
	fs.IntVar(&cfg.starts, "starts", cfg.starts, "Runs started through the REST API, with eager_start on and again off.")
	fs.IntVar(&cfg.fanOutNames, "fan-out-names", cfg.fanOutNames, "Names of the fan_out run of the flood figure, started through the REST API (one child run each, up to --max-children-per-run).")
	fs.IntVar(&cfg.sleepRuns, "sleep-runs", cfg.sleepRuns, "Runs of the timer lateness figure.")
	fs.DurationVar(&cfg.sleepFor, "sleep-for", cfg.sleepFor, "How long each of those runs sleeps.")
	fs.IntVar(&cfg.memoryRuns, "memory-runs", cfg.memoryRuns, "Runs held by the manager in the memory figure.")
	fs.IntVar(&cfg.schedules, "schedules", cfg.schedules, "WorkflowSchedules firing on the same minute in the schedule figure.")
	fs.IntVar(&cfg.memoryInput, "memory-input-bytes", cfg.memoryInput, "Size of the input of each of those runs.")
	fs.IntVar(&cfg.shardRuns, "shard-runs", cfg.shardRuns, "Runs of the sharding figure, executed by one replica and then by -shard-replicas.")
	fs.IntVar(&cfg.shardSteps, "shard-steps", cfg.shardSteps, "CPU-bound steps of each run of the sharding figure.")
	fs.DurationVar(&cfg.shardCPU, "shard-step-cpu", cfg.shardCPU, "CPU time each step of the sharding figure burns.")
	fs.IntVar(&cfg.shardReplicas, "shard-replicas", cfg.shardReplicas, "Sharded replicas (each with GOMAXPROCS=1) of the sharding figure.")
	fs.DurationVar(&cfg.shardWait, "shard-step-wait", cfg.shardWait, "How long each step of the I/O-bound sharding figure waits (same runs and steps as the CPU-bound one).")
	fs.IntVar(&cfg.shardExecutions, "shard-executions", cfg.shardExecutions, "Each replica's --max-concurrent-reconciles in the I/O-bound sharding figure.")
	fs.IntVar(&cfg.repeat, "repeat", cfg.repeat, "Repetitions of the sequential figures (the median counts).")
	fs.DurationVar(&cfg.timeout, "timeout", cfg.timeout, "Longest wait for the runs of one figure.")
	fs.BoolVar(&cfg.unsafeNoFsync, "unsafe-no-fsync", false, "Run etcd without fsync, as envtest does (not the real limit).")
	fs.StringVar(&cfg.managerBin, "manager-bin", "", "A prebuilt hack/testmanager binary (default: build it).")
	fs.StringVar(&cfg.temporalPeer, "temporal-peer", cfg.temporalPeer, "Directory of the Temporal peer program (../shared/peers/temporal) whose local activities the batched figure is measured against; empty skips it.")
	fs.StringVar(&cfg.profileDir, "profile-dir", "", "Write a CPU profile of the manager for each figure here, and its heap profiles in the memory figure.")
	fs.StringVar(&cfg.doc, "doc", "", "Replace the table in this Markdown file (docs/benchmarks.md).")
	fs.StringVar(&cfg.workDir, "work-dir", "", "Keep etcd's data, the logs and the kubeconfig here (default: a temporary dir, removed).")
	only := fs.String("figures", "", "Comma-separated figures to measure (default all): "+strings.Join(allFigures, ", ")+".")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *only != "" {
		cfg.figures = map[string]bool{}
		for f := range strings.SplitSeq(*only, ",") {
			if !slices.Contains(allFigures, f) {
				return cfg, fmt.Errorf("unknown figure %q; choose among %s", f, strings.Join(allFigures, ", "))
			}
			cfg.figures[f] = true
		}
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return cfg, nil
}

// hasSmoke reports whether args ask for the smoke sizes.
func hasSmoke(args []string) bool {
	for _, a := range args {
		if a == "-smoke" || a == "--smoke" || a == "-smoke=true" || a == "--smoke=true" {
			return true
		}
	}
	return false
}

// run measures every figure and returns the results, also when a figure failed (with the
// figures measured so far).
func run(ctx context.Context, cfg config, out io.Writer) (*results, error) {
	dir := cfg.workDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "centaur-bench-")
		if err != nil {
			return nil, fmt.Errorf("create a work dir: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create the log dir: %w", err)
	}
	if cfg.profileDir != "" {
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return nil, fmt.Errorf("create the profile dir: %w", err)
		}
	}
	h, err := startHarness(ctx, cfg, dir, out)
	defer h.stop()
	if err != nil {
		return nil, err
	}
	res := &results{cfg: cfg, machine: describeMachine(cfg)}
	err = h.measureAll(ctx, res)
	res.cpu = h.cpu
	if err == nil && cfg.doc != "" {
		err = res.writeDoc(cfg.doc)
	}
	if err != nil && cfg.workDir == "" {
		err = errors.Join(err, errors.New("rerun with -work-dir to keep the logs"))
	}
	return res, err
}

// measureAll measures the figures in an order that keeps each one's conditions clean: the
// engine's figures beside their raw limits, then the HTTP paths and memory.
func (h *harness) measureAll(ctx context.Context, res *results) error {
	if err := h.measureEngine(ctx, res); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	steps := []struct {
		figure  string
		measure func(context.Context, *results) error
	}{{"tracing", h.measureTracing}, {"blobs", h.measureBlobs}, {"webhooks", h.measureWebhooks}, {"starts", h.measureStarts}, {"schedules", h.measureSchedules}, {"memory", h.measureMemory},
		{"sharding", h.measureSharding}, {"flood", h.measureFlood}}
	for _, s := range steps {
		if !h.cfg.wants(s.figure) {
			continue
		}
		if err := s.measure(ctx, res); err != nil {
			return fmt.Errorf("%s: %w", s.figure, err)
		}
	}
	return nil
}
