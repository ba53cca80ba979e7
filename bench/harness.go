package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/internal/testflows"
)

// harness is the benchmark's world: the control plane, a client without a rate limit, the
// manager binary and the directory for kubeconfig, logs and profiles.
type harness struct {
	cfg        config
	cluster    *testcluster.Cluster
	client     client.WithWatch
	dir        string
	kubeconfig string
	// workflowDir holds the benchmark's workflow files (testflows.NoopFile and NoopPy, and the
	// product's workflows/nightly_report.py), which every manager loads through --workflow-dirs.
	workflowDir string
	managerBin  string
	out         io.Writer
	// managers counts manager starts, to name their log files.
	managers int
	// cpu collects the CPU each process used per step, by figure.
	cpu []cpuUse
	// temporalBin is the built Temporal peer; temporalNote says why there is none.
	temporalBin, temporalNote string
}

// newScheme returns a scheme with the built-in kinds and the operator's.
func newScheme() *runtime.Scheme {
	s := controllers.NewScheme()
	return s
}

// startHarness starts the control plane and builds (or takes) the manager binary.
func startHarness(ctx context.Context, cfg config, dir string, out io.Writer) (*harness, error) {
	h := &harness{cfg: cfg, dir: dir, out: out, kubeconfig: filepath.Join(dir, "kubeconfig")}
	h.logf("starting etcd (fsync %s) and kube-apiserver from bin/k8s", onOff(!cfg.unsafeNoFsync))
	cluster, err := testcluster.Start(testcluster.Options{
		DataDir:       filepath.Join(dir, "etcd"),
		LogDir:        filepath.Join(dir, "logs"),
		UnsafeNoFsync: cfg.unsafeNoFsync,
		// etcd's production default, written out: the flood figure checks that no request
		// meets "database space exceeded" (the manager's --max-total-bytes stays under it).
		EtcdQuotaBytes: 2 << 30,
	})
	if err != nil {
		return nil, err
	}
	h.cluster = cluster
	if err := cluster.WriteKubeconfig(h.kubeconfig); err != nil {
		return h, err
	}
	if h.client, err = client.NewWithWatch(cluster.Config(), client.Options{Scheme: newScheme()}); err != nil {
		return h, fmt.Errorf("create the client: %w", err)
	}
	switch {
	case !cfg.wants("batched"):
	case cfg.smoke:
		h.temporalNote = "the peer is not run at smoke sizes"
	default:
		h.temporalBin, h.temporalNote = h.buildTemporalPeer(ctx)
	}
	if err := h.writeWorkflowFiles(); err != nil {
		return h, err
	}
	h.managerBin = cfg.managerBin
	if h.managerBin == "" {
		h.managerBin = filepath.Join(dir, "testmanager")
		h.logf("building hack/testmanager (race=%v)", cfg.race)
		if err := testcluster.Build(ctx, "./hack/testmanager", h.managerBin, cfg.race); err != nil {
			return h, err
		}
	}
	return h, nil
}

// nightlyReportFile is the product's Python example, which the worker RSS figure runs.
const nightlyReportFile = "workflows/nightly_report.py"

// writeWorkflowFiles writes the benchmark's workflow files into their own directory: the
// Starlark and Python twins of bench-noop, and a copy of the product's nightly_report.py.
func (h *harness) writeWorkflowFiles() error {
	h.workflowDir = filepath.Join(h.dir, "workflows")
	if err := os.MkdirAll(h.workflowDir, 0o755); err != nil {
		return fmt.Errorf("create the workflow files' directory: %w", err)
	}
	root, err := testcluster.ModuleRoot()
	if err != nil {
		return err
	}
	nightly, err := os.ReadFile(filepath.Join(root, nightlyReportFile))
	if err != nil {
		return fmt.Errorf("read the product's %s: %w", nightlyReportFile, err)
	}
	files := map[string]string{
		"bench_noop_file.star":           testflows.NoopFile,
		testflows.NoopPyFile:             testflows.NoopPy,
		filepath.Base(nightlyReportFile): string(nightly),
	}
	for name, text := range files {
		path := filepath.Join(h.workflowDir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

// stop stops the control plane; a nil harness is a no-op.
func (h *harness) stop() {
	if h != nil && h.cluster != nil {
		if err := h.cluster.Stop(); err != nil {
			h.logf("stop the control plane: %v", err)
		}
	}
}

// logf prints a progress line.
func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.out, "bench: "+format+"\n", args...)
}

// ensureNamespace creates ns unless it exists.
func (h *harness) ensureNamespace(ctx context.Context, ns string) error {
	err := h.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// managerProc is one running manager binary and its endpoints.
type managerProc struct {
	*testcluster.ManagerProcess
	apiURL     string
	pprofURL   string
	metricsURL string
	// startedAt is when the process started; readyAt when its readiness probe first answered,
	// readyCPU and readyWorkers the CPU time it and its Python workers (by pid) had used then.
	startedAt, readyAt time.Time
	readyCPU           time.Duration
	readyWorkers       map[int]time.Duration
}

// startManager runs the manager binary with every listener on a free loopback port, waits
// until it is ready, and returns it.
func (h *harness) startManager(ctx context.Context, extraArgs ...string) (*managerProc, error) {
	return h.startManagerEnv(ctx, nil, extraArgs...)
}

// startManagerEnv is startManager with env added to the manager's environment, after the Go
// runtime's settings that config/manager ships (shippedRuntimeEnv), which env may override.
func (h *harness) startManagerEnv(ctx context.Context, env []string, extraArgs ...string) (*managerProc, error) {
	shipped, err := shippedRuntimeEnv()
	if err != nil {
		return nil, err
	}
	env = append(shipped, env...)
	pprofAddr, err := testcluster.FreeAddr()
	if err != nil {
		return nil, err
	}
	h.managers++
	args := append([]string{
		"--pprof-bind-address=" + pprofAddr,
		fmt.Sprintf("--max-concurrent-reconciles=%d", h.cfg.parallelism),
		// The webhook figure's endpoint and signing Secret live in their own namespace.
		"--secret-namespaces=" + webhookNamespace,
		"--workflow-dirs=" + h.workflowDir,
		fmt.Sprintf("--python-workers=%d", h.cfg.pyWorkers),
	}, extraArgs...)
	proc, err := testcluster.StartManagerProcess(testcluster.ManagerProcessOptions{
		Binary: h.managerBin, Kubeconfig: h.kubeconfig, Args: args, Env: env,
		LogFile: filepath.Join(h.dir, "logs", fmt.Sprintf("manager-%d.log", h.managers)),
	})
	if err != nil {
		return nil, err
	}
	m := &managerProc{ManagerProcess: proc, apiURL: proc.Listeners.API, pprofURL: "http://" + pprofAddr,
		metricsURL: proc.Listeners.Metrics + "/metrics", startedAt: time.Now()}
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = m.awaitReadyz(readyCtx)
	if err == nil {
		err = proc.WaitReady(readyCtx)
	}
	if err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// readyzPoll is how often awaitReadyz asks: the precision of readyAt.
const readyzPoll = 5 * time.Millisecond

// awaitReadyz polls the manager's readiness probe until it answers 200, and records when, with
// the CPU time used so far.
func (m *managerProc) awaitReadyz(ctx context.Context) error {
	url := m.Listeners.Probes + "/readyz"
	hc := &http.Client{Timeout: time.Second}
	for {
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				m.readyAt, m.readyCPU = time.Now(), testcluster.CPUTime(m.PID())
				m.readyWorkers, err = workersCPU(m.PID())
				return err
			}
		}
		if m.Exited() {
			return fmt.Errorf("the manager exited before it was ready (log %s): %s", m.LogFile, m.ExitDescription())
		}
		if err := testcluster.Sleep(ctx, readyzPoll); err != nil {
			return fmt.Errorf("wait for the manager's readiness (log %s): %w", m.LogFile, err)
		}
	}
}

// stop shuts the manager down; a nil manager is a no-op.
func (m *managerProc) stop() {
	if m == nil {
		return
	}
	_ = m.Stop(20 * time.Second)
}

// startCPUProfile starts a CPU profile in the manager.
func (m *managerProc) startCPUProfile(ctx context.Context) error {
	_, err := m.post(ctx, m.pprofURL+"/cpuprofile/start")
	return err
}

// stopCPUProfile stops the manager's CPU profile and writes it to path.
func (m *managerProc) stopCPUProfile(ctx context.Context, path string) error {
	data, err := m.post(ctx, m.pprofURL+"/cpuprofile/stop")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write the CPU profile: %w", err)
	}
	return nil
}

// writeHeapProfile writes the manager's heap profile (net/http/pprof's, after a collection) to
// path.
func (m *managerProc) writeHeapProfile(ctx context.Context, path string) error {
	url := m.pprofURL + "/debug/pprof/heap?gc=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read the heap profile (status %d): %w", resp.StatusCode, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write the heap profile: %w", err)
	}
	return nil
}

// post sends an empty POST and returns the body of a 200.
func (m *managerProc) post(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, fmt.Errorf("build POST %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer of POST %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", url, resp.Status, body)
	}
	return body, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// maintainEtcd compacts and defragments etcd (testcluster.CompactEtcd) before a figure that
// meets etcd's quota, so that it meets its own data and not the history of every figure before
// it, which a cluster's operators would have defragmented away; it logs the database's size.
func (h *harness) maintainEtcd(ctx context.Context, when string) error {
	before, after, err := h.cluster.CompactEtcd(ctx)
	if err != nil {
		return fmt.Errorf("etcd maintenance %s: %w", when, err)
	}
	h.logf("etcd maintenance %s: database %.0f MiB, %.0f MiB after compaction and defragmentation", when, mib(before), mib(after))
	return nil
}
