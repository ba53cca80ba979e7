package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
	centaur "github.com/centaur-dev/workflow-operator/manager"
)

// Namespaces of the crash test.
const (
	runNamespace   = "chaos"
	leaseNamespace = "chaos-lease"
)

// chaos is one crash test: the control plane, the managers it started and killed, and what
// it needs to judge the outcome.
type chaos struct {
	cfg        config
	out        io.Writer
	dir        string
	cluster    *testcluster.Cluster
	client     client.Client
	kubeconfig string
	ledger     string
	// workflowDir holds the Python twin of the ledger workflow, which every manager loads.
	workflowDir string
	bin         string
	rng         *rand.Rand
	// input and longInput are the runs' inputs: every longEvery-th run is a long one.
	input, longInput []byte

	created  []string
	batches  int
	managers []*manager
	// killed maps the pid of each manager killed with SIGKILL (or stopped with SIGTERM) to why.
	killed map[int]string
	// killedAt and stoppedAt are when each killed or stopped manager was signalled.
	killedAt, stoppedAt map[int]time.Time
	// killedWorkers maps the pid of each Python worker SIGKILLed to when.
	killedWorkers map[int]time.Time
	// shards counts the sharded replicas started; shardRuns the sharded phase's runs created.
	shards, shardRuns int
	// outages are the windows in which etcd was down, plus the time the API server took to
	// notice it was back.
	outages []window
	stats   stats
}

// manager is one manager process of the test.
type manager struct {
	*testcluster.ManagerProcess
	started time.Time
	// shard is the replica's shard name in the sharded phase.
	shard string
}

// How far around an etcd outage a step that ran again is put down to it.
const (
	outageBefore = 5 * time.Second
	outageAfter  = 20 * time.Second
)

// window is a span of time.
type window struct{ from, to time.Time }

// run runs the crash test and returns its counts; the error lists every violation found.
func run(ctx context.Context, cfg config, out io.Writer) (*stats, error) {
	c := &chaos{cfg: cfg, out: out, killed: map[int]string{}, killedAt: map[int]time.Time{}, stoppedAt: map[int]time.Time{},
		killedWorkers: map[int]time.Time{}, rng: rand.New(rand.NewPCG(uint64(cfg.seed), 0))}
	c.stats.Seed = cfg.seed
	if err := c.setUp(ctx); err != nil {
		c.tearDown(false)
		return nil, err
	}
	start := time.Now()
	err := c.crash(ctx)
	if err == nil {
		err = c.judge(ctx)
	}
	c.stats.Elapsed = time.Since(start).Round(time.Second)
	c.tearDown(err == nil)
	return &c.stats, err
}

// setUp starts the control plane, builds the manager and prepares the namespaces.
func (c *chaos) setUp(ctx context.Context) error {
	c.dir = c.cfg.workDir
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "centaur-chaos-")
		if err != nil {
			return fmt.Errorf("create a work dir: %w", err)
		}
		c.dir = dir
	}
	c.ledger = filepath.Join(c.dir, "ledger.jsonl")
	c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
	if err := c.writeWorkflowFile(); err != nil {
		return err
	}
	c.logf("seed %d; work dir %s; starting etcd (fsync on, data on disk) and kube-apiserver", c.cfg.seed, c.dir)
	cluster, err := testcluster.Start(testcluster.Options{DataDir: filepath.Join(c.dir, "etcd"), LogDir: filepath.Join(c.dir, "logs")})
	if err != nil {
		return err
	}
	c.cluster = cluster
	if err := cluster.WriteKubeconfig(c.kubeconfig); err != nil {
		return err
	}
	scheme := controllers.NewScheme()
	if c.client, err = client.New(cluster.Config(), client.Options{Scheme: scheme}); err != nil {
		return fmt.Errorf("create the client: %w", err)
	}
	if c.bin = c.cfg.managerBin; c.bin == "" {
		c.bin = filepath.Join(c.dir, "testmanager")
		c.logf("building hack/testmanager (race detector %v)", c.cfg.race)
		if err := testcluster.Build(ctx, "./hack/testmanager", c.bin, c.cfg.race); err != nil {
			return err
		}
	}
	in := testflows.LedgerInput{
		Steps: c.cfg.steps, SleepEvery: c.cfg.sleepEvery, SleepMillis: c.cfg.sleepMillis,
		FailEvery: c.cfg.failEvery, BackoffMillis: c.cfg.backoffMillis, WorkMillis: c.cfg.workMillis,
	}
	long := in
	long.Steps, long.SleepEvery = c.cfg.longSteps, c.cfg.longSleep
	if c.input, err = json.Marshal(in); err != nil {
		return fmt.Errorf("encode the runs' input: %w", err)
	}
	if c.longInput, err = json.Marshal(long); err != nil {
		return fmt.Errorf("encode the long runs' input: %w", err)
	}
	// The operator's namespace holds the revisions of the Python workflow file.
	for _, ns := range []string{runNamespace, leaseNamespace, centaur.DefaultOperatorNamespace} {
		if err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	return nil
}

// writeWorkflowFile writes the ledger workflow's Python twin into the managers' workflow
// directory.
func (c *chaos) writeWorkflowFile() error {
	c.workflowDir = filepath.Join(c.dir, "workflows")
	if err := os.MkdirAll(c.workflowDir, 0o755); err != nil {
		return fmt.Errorf("create the workflow directory: %w", err)
	}
	path := filepath.Join(c.workflowDir, testflows.LedgerPyFile)
	if err := os.WriteFile(path, []byte(testflows.LedgerPy), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// tearDown kills what still runs and removes the work dir after a pass (unless it was given).
func (c *chaos) tearDown(passed bool) {
	for _, m := range c.managers {
		_ = m.Kill()
	}
	if c.cluster != nil {
		if err := c.cluster.Stop(); err != nil {
			c.logf("stop the control plane: %v", err)
		}
	}
	if passed && c.cfg.workDir == "" {
		_ = os.RemoveAll(c.dir)
	} else if c.dir != "" {
		c.logf("logs, ledger and etcd data kept in %s", c.dir)
	}
}

// crash runs the workload through the kills: cfg.kills lives of a single manager, each ended
// with SIGKILL at a random moment (etcd is killed in the middle one), then two managers under
// leader election whose leader is killed, then the survivor finishes every run; then the
// sharded phase (crashShards) when cfg.shardRuns is set.
func (c *chaos) crash(ctx context.Context) error {
	if err := c.crashSingle(ctx); err != nil {
		return err
	}
	if c.cfg.shardRuns == 0 {
		return nil
	}
	return c.crashShards(ctx)
}

// crashSingle runs the single manager's part of the workload (see crash).
func (c *chaos) crashSingle(ctx context.Context) error {
	c.batches = c.cfg.kills + 1
	for life := range c.cfg.kills {
		if err := c.createBatch(ctx); err != nil {
			return err
		}
		m, err := c.startManager(false)
		if err != nil {
			return err
		}
		uptime := c.uptime()
		if !c.cfg.skipEtcd && life == c.cfg.kills/2 {
			if err := c.crashEtcd(ctx, uptime/2); err != nil {
				return err
			}
			uptime /= 2
		}
		if err := c.live(ctx, []*manager{m}, uptime); err != nil {
			return err
		}
		if err := c.kill(m, "manager"); err != nil {
			return err
		}
	}
	if err := c.createBatch(ctx); err != nil {
		return err
	}
	if c.cfg.skipLeader {
		_, err := c.startManager(false)
		return err
	}
	return c.crashLeader(ctx)
}

// uptime draws how long the next manager lives.
func (c *chaos) uptime() time.Duration {
	span := c.cfg.maxUptime - c.cfg.minUptime
	return c.cfg.minUptime + time.Duration(c.rng.Int64N(int64(span)+1))
}

// createBatch creates the next batch of runs, so that new runs keep arriving while managers
// die. Creates are retried while the API server recovers from an etcd kill.
func (c *chaos) createBatch(ctx context.Context) error {
	size := (c.cfg.runs + c.batches - 1) / c.batches
	for range size {
		if len(c.created)-c.shardRuns == c.cfg.runs {
			return nil
		}
		i := len(c.created)
		if err := c.createRun(ctx, fmt.Sprintf("chaos-%05d", i), c.workflowOf(i), c.inputOf(i)); err != nil {
			return err
		}
	}
	return nil
}

// inputOf is the input of the i-th run (from 0): every longEvery-th run is a long one.
func (c *chaos) inputOf(i int) []byte {
	if c.cfg.longEvery > 0 && i%c.cfg.longEvery == c.cfg.longEvery-1 {
		c.stats.Long++
		return c.longInput
	}
	return c.input
}

// workflowOf is the workflow of the i-th run of a phase (from 0): every pythonEvery-th run is
// one of the ledger workflow's Python twin.
func (c *chaos) workflowOf(i int) string {
	if c.cfg.pythonEvery > 0 && i%c.cfg.pythonEvery == c.cfg.pythonEvery-1 {
		c.stats.PythonRuns++
		return testflows.LedgerPyName
	}
	return testflows.LedgerName
}

// createRun creates one run of the ledger workflow (or its Python twin) with input, retrying
// while the API server recovers.
func (c *chaos) createRun(ctx context.Context, name, workflow string, input []byte) error {
	run := &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: runNamespace, Name: name},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow, Input: &apiextensionsv1.JSON{Raw: input}},
	}
	if err := retry(ctx, func() error { return c.client.Create(ctx, run) }, apierrors.IsAlreadyExists); err != nil {
		return fmt.Errorf("create run %s: %w", name, err)
	}
	c.created = append(c.created, name)
	return nil
}

// retry calls fn until it succeeds or ok(err), for up to a minute.
func retry(ctx context.Context, fn func() error, ok func(error) bool) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := fn()
		if err == nil || ok(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if err := testcluster.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// startManager starts a manager process, with leader election or without, and extra flags.
func (c *chaos) startManager(leaderElect bool, extra ...string) (*manager, error) {
	args := []string{fmt.Sprintf("--max-concurrent-reconciles=%d", c.cfg.parallelism), "--workflow-dirs=" + c.workflowDir}
	if leaderElect {
		args = append(args, "--leader-elect", "--leader-election-namespace="+leaseNamespace)
	}
	p, err := testcluster.StartManagerProcess(testcluster.ManagerProcessOptions{
		Binary: c.bin, Kubeconfig: c.kubeconfig, Args: append(args, extra...),
		Env:     []string{testflows.LedgerEnv + "=" + c.ledger, "GORACE=halt_on_error=0"},
		LogFile: filepath.Join(c.dir, "logs", fmt.Sprintf("manager-%02d.log", len(c.managers)+1)),
	})
	if err != nil {
		return nil, err
	}
	m := &manager{ManagerProcess: p, started: time.Now()}
	c.managers = append(c.managers, m)
	return m, nil
}

// kill SIGKILLs manager m and records why. A sharded replica that exited already because it
// lost a lease is left as it is.
func (c *chaos) kill(m *manager, why string) error {
	if m.Exited() {
		if m.shard != "" && c.noteLeaseLost(m) {
			return nil
		}
		return fmt.Errorf("manager pid %d exited by itself before its kill (see %s)", m.PID(), m.LogFile)
	}
	if err := m.Kill(); err != nil {
		return fmt.Errorf("kill manager pid %d: %w", m.PID(), err)
	}
	c.killed[m.PID()] = why
	c.killedAt[m.PID()] = time.Now()
	switch {
	case why == "leader":
		c.stats.LeaderKills++
	case m.shard != "":
		c.stats.ShardKills++
	default:
		c.stats.ManagerKills++
	}
	c.logf("SIGKILL %s pid %d after %s", why, m.PID(), time.Since(m.started).Round(time.Millisecond))
	return nil
}

// crashEtcd lets the manager work for after, then kills etcd with SIGKILL, keeps it down for
// cfg.etcdDown and starts it again on its data, while runs are in flight.
func (c *chaos) crashEtcd(ctx context.Context, after time.Duration) error {
	if err := testcluster.Sleep(ctx, after); err != nil {
		return err
	}
	down := time.Now()
	if err := c.cluster.KillEtcd(); err != nil {
		return err
	}
	c.stats.EtcdKills++
	c.logf("SIGKILL etcd; restarting it in %s", c.cfg.etcdDown)
	if err := testcluster.Sleep(ctx, c.cfg.etcdDown); err != nil {
		return err
	}
	if err := c.cluster.RestartEtcd(); err != nil {
		return err
	}
	// A step whose write failed because etcd was down runs again. Its ledger line came before
	// the write, so up to a step's work before the kill; its write may have been stuck until
	// the API server's etcd client reconnected, a little after the restart.
	c.outages = append(c.outages, window{from: down.Add(-outageBefore), to: time.Now().Add(outageAfter)})
	c.logf("etcd is back after %s", time.Since(down).Round(time.Millisecond))
	return nil
}

// crashLeader runs two managers under leader election, kills the leader at a random moment
// once it leads, and waits until the other took over.
func (c *chaos) crashLeader(ctx context.Context) error {
	a, err := c.startManager(true)
	if err != nil {
		return err
	}
	b, err := c.startManager(true)
	if err != nil {
		return err
	}
	leader, err := c.awaitLeader(ctx, a, b)
	if err != nil {
		return err
	}
	if err := c.live(ctx, []*manager{leader}, c.uptime()); err != nil {
		return err
	}
	survivor := a
	if leader == a {
		survivor = b
	}
	if err := c.kill(leader, "leader"); err != nil {
		return err
	}
	if _, err := c.awaitLeader(ctx, survivor); err != nil {
		return err
	}
	c.logf("pid %d took the lease over", survivor.PID())
	return nil
}

// leaseAcquired is what client-go's leader election logs once a replica leads, lower-cased
// (klog writes "successfully", controller-runtime's logger "Successfully").
const leaseAcquired = "successfully acquired lease"

// awaitLeader waits until one of candidates logs that it acquired the lease, and returns it.
func (c *chaos) awaitLeader(ctx context.Context, candidates ...*manager) (*manager, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, m := range candidates {
			data, err := os.ReadFile(m.LogFile)
			if err == nil && strings.Contains(strings.ToLower(string(data)), leaseAcquired) {
				return m, nil
			}
			if m.Exited() {
				return nil, fmt.Errorf("manager pid %d exited while waiting for the lease (see %s)", m.PID(), m.LogFile)
			}
		}
		if err := testcluster.Sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("no manager acquired the leader lease within a minute")
}

// logf prints a progress line.
func (c *chaos) logf(format string, args ...any) {
	fmt.Fprintf(c.out, "chaos: "+format+"\n", args...)
}
