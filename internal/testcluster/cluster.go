// Package testcluster runs the real control plane and the real manager as OS processes, for
// every test, benchmark and local cluster of the repository: the envtest suites (go test), the
// benchmark (bench/), the crash test (hack/chaos/) and the dev cluster (hack/devcluster, `make
// dev`). The control plane is etcd and kube-apiserver from bin/k8s, started through envtest,
// with the operator's CRDs installed and, when asked, kube-controller-manager's garbage
// collector; the manager is the binary built from the module, started and waited for by
// StartManagerProcess. (A suite that runs its manager inside the test process uses
// internal/testenv for that.)
//
// Unlike envtest's defaults, etcd runs with fsync on unless Options.UnsafeNoFsync says
// otherwise: envtest passes --unsafe-no-fsync, which makes every write faster than a real
// cluster's and lets a killed etcd lose acknowledged writes. The benchmark measures the engine
// against the limit of durable writes and the crash test kills etcd while runs are in flight,
// so both need the real thing; the suites trade it for speed.
package testcluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure a control plane.
type Options struct {
	// AssetsDir holds the etcd, kube-apiserver and kube-controller-manager binaries. Default:
	// $KUBEBUILDER_ASSETS, else bin/k8s under the module root.
	AssetsDir string
	// DataDir is etcd's data directory; it is kept on Stop. Default: a directory in the
	// cluster's temporary directory, which Stop removes.
	DataDir string
	// LogDir receives etcd.log, kube-apiserver.log and kube-controller-manager.log. Default:
	// the processes' output is dropped.
	LogDir string
	// UnsafeNoFsync turns etcd's fsync off, as envtest does by default: the suites' choice,
	// for speed. Leave it false to measure and test against durable writes.
	UnsafeNoFsync bool
	// CRDDir holds the CRDs to install. Default: config/crd/bases under the module root.
	CRDDir string
	// EtcdQuotaBytes, when set, is etcd's --quota-backend-bytes: past it etcd refuses writes
	// with "database space exceeded", as a production etcd does (its default is 2 GiB).
	EtcdQuotaBytes int64
	// ControllerManager also runs kube-controller-manager with only the garbage collector and
	// the namespace controller: what makes owner references delete what a run owns (segments,
	// payloads, child runs) and `kubectl delete namespace` finish, as in a real cluster.
	ControllerManager bool
}

// Cluster is a running etcd and kube-apiserver with the operator's CRDs installed, and
// kube-controller-manager when Options.ControllerManager asked for it.
type Cluster struct {
	env *envtest.Environment
	cfg *rest.Config
	// dir is the cluster's temporary directory (etcd's default data dir, the controller
	// manager's kubeconfig); Stop removes it.
	dir  string
	logs []*os.File
	kcm  *Process
}

// Start starts etcd and kube-apiserver, installs the CRDs and starts kube-controller-manager
// when o asks for it. Call Stop when done, also after an error of a later call, so that no
// process or temporary directory outlives the caller.
func Start(o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	if c.dir, err = os.MkdirTemp("", "centaur-cluster-"); err != nil {
		return nil, fmt.Errorf("create the cluster's temporary dir: %w", err)
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(c.dir, "etcd")
	}
	if err := c.startControlPlane(o); err != nil {
		_ = c.Stop()
		return nil, err
	}
	if o.ControllerManager {
		if err := c.startControllerManager(o); err != nil {
			_ = c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// startControlPlane starts etcd and kube-apiserver through envtest and installs the CRDs.
func (c *Cluster) startControlPlane(o Options) error {
	etcd := &envtest.Etcd{Path: filepath.Join(o.AssetsDir, "etcd"), DataDir: o.DataDir, StartTimeout: time.Minute}
	if !o.UnsafeNoFsync {
		// envtest adds --unsafe-no-fsync=true whenever the binary knows the flag; Disable
		// keeps it off the command line, so etcd fsyncs every commit as in production.
		etcd.Configure().Disable("unsafe-no-fsync")
	}
	etcd.Configure().Set("log-level", "warn")
	if o.EtcdQuotaBytes > 0 {
		etcd.Configure().Set("quota-backend-bytes", strconv.FormatInt(o.EtcdQuotaBytes, 10))
	}
	api := &envtest.APIServer{Path: filepath.Join(o.AssetsDir, "kube-apiserver"), StartTimeout: time.Minute}
	var err error
	if etcd.Out, err = c.logFile(o.LogDir, "etcd.log"); err != nil {
		return err
	}
	if api.Out, err = c.logFile(o.LogDir, "kube-apiserver.log"); err != nil {
		return err
	}
	etcd.Err, api.Err = etcd.Out, api.Out
	noExisting := false
	c.env = &envtest.Environment{
		ControlPlane:             envtest.ControlPlane{Etcd: etcd, APIServer: api},
		BinaryAssetsDirectory:    o.AssetsDir,
		UseExistingCluster:       &noExisting,
		CRDDirectoryPaths:        []string{o.CRDDir},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  20 * time.Second,
	}
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("start etcd and kube-apiserver from %s: %w", o.AssetsDir, err)
	}
	// No client-side rate limit: the API server's priority and fairness is the only limit,
	// as in the manager (controller-runtime's GetConfig does the same).
	cfg.QPS, cfg.Burst = -1, 0
	c.cfg = cfg
	return nil
}

// startControllerManager runs kube-controller-manager's garbage collector and namespace
// controller against the API server, as an admin user of its own.
func (c *Cluster) startControllerManager(o Options) error {
	kubeconfig := filepath.Join(c.dir, "kube-controller-manager.kubeconfig")
	if err := c.writeAdminKubeconfig("kube-controller-manager", kubeconfig); err != nil {
		return err
	}
	out, err := c.logFile(o.LogDir, "kube-controller-manager.log")
	if err != nil {
		return err
	}
	c.kcm, err = StartProcess(ProcessOptions{
		Binary: filepath.Join(o.AssetsDir, "kube-controller-manager"),
		Args: []string{
			"--kubeconfig=" + kubeconfig,
			"--controllers=garbage-collector-controller,namespace-controller",
			"--leader-elect=false",
			"--secure-port=0",
			"--concurrent-gc-syncs=10",
		},
		Output: out,
	})
	return err
}

// withDefaults fills in the directories the caller left empty and checks that the binaries
// the cluster runs are there.
func (o Options) withDefaults() (Options, error) {
	if o.AssetsDir == "" {
		o.AssetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.AssetsDir == "" || o.CRDDir == "" {
		root, err := ModuleRoot()
		if err != nil {
			return o, err
		}
		if o.AssetsDir == "" {
			o.AssetsDir = filepath.Join(root, "bin", "k8s")
		}
		if o.CRDDir == "" {
			o.CRDDir = filepath.Join(root, "config", "crd", "bases")
		}
	}
	abs, err := filepath.Abs(o.AssetsDir)
	if err != nil {
		return o, fmt.Errorf("resolve the assets dir %s: %w", o.AssetsDir, err)
	}
	o.AssetsDir = abs
	bins := []string{"etcd", "kube-apiserver"}
	if o.ControllerManager {
		bins = append(bins, "kube-controller-manager")
	}
	for _, bin := range bins {
		if _, err := os.Stat(filepath.Join(o.AssetsDir, bin)); err != nil {
			return o, fmt.Errorf("find %s in %s (run `make control-plane`; `make test` sets KUBEBUILDER_ASSETS): %w", bin, o.AssetsDir, err)
		}
	}
	return o, nil
}

// logFile creates the log file name in dir, closed by Stop; with no dir it returns a nil
// writer, which drops the output.
func (c *Cluster) logFile(dir, name string) (io.Writer, error) {
	if dir == "" {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the log dir: %w", err)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	c.logs = append(c.logs, f)
	return f, nil
}

// Config returns an admin client configuration without a client-side rate limit.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.cfg) }

// AdminKubeconfig provisions an admin user (group system:masters) called name and returns its
// kubeconfig, which holds the user's private key.
func (c *Cluster) AdminKubeconfig(name string) ([]byte, error) {
	user, err := c.env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("provision the admin user %s: %w", name, err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("render the kubeconfig of %s: %w", name, err)
	}
	return raw, nil
}

// WriteKubeconfig provisions an admin user and writes its kubeconfig to path (mode 0600), for
// the manager processes.
func (c *Cluster) WriteKubeconfig(path string) error {
	return c.writeAdminKubeconfig("centaur-harness", path)
}

// writeAdminKubeconfig provisions the admin user name and writes its kubeconfig to path with
// mode 0600: it holds the user's key.
func (c *Cluster) writeAdminKubeconfig(name, path string) error {
	raw, err := c.AdminKubeconfig(name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig of %s: %w", name, err)
	}
	return nil
}

// EtcdPID returns etcd's process id.
func (c *Cluster) EtcdPID() (int, error) { return childByPath(c.env.ControlPlane.Etcd.Path) }

// APIServerPID returns kube-apiserver's process id.
func (c *Cluster) APIServerPID() (int, error) {
	return childByPath(c.env.ControlPlane.APIServer.Path)
}

// KillEtcd kills etcd with SIGKILL, as a crash or a power cut of its node would, and waits
// until it is gone. Writes it acknowledged are on disk (fsync); nothing else is.
func (c *Cluster) KillEtcd() error {
	pid, err := c.EtcdPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill etcd (pid %d): %w", pid, err)
	}
	// envtest's process state reaps it; wait for that so a restart finds it exited.
	deadline := time.Now().Add(10 * time.Second)
	for processExists(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd (pid %d) did not exit after SIGKILL", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// RestartEtcd starts etcd again after KillEtcd, on the same address and data dir; the API
// server reconnects by itself.
func (c *Cluster) RestartEtcd() error {
	etcd := c.env.ControlPlane.Etcd
	// Stop only releases envtest's state of the exited process; the data dir is ours.
	if err := etcd.Stop(); err != nil {
		return fmt.Errorf("release the killed etcd: %w", err)
	}
	if err := etcd.Start(); err != nil {
		return fmt.Errorf("restart etcd: %w", err)
	}
	return nil
}

// controllerManagerStopTimeout bounds how long kube-controller-manager may take to stop.
const controllerManagerStopTimeout = 10 * time.Second

// Stop stops kube-controller-manager, kube-apiserver and etcd (SIGTERM, SIGKILL after a
// timeout), closes the log files and removes the cluster's temporary directory; a DataDir the
// caller gave stays.
func (c *Cluster) Stop() error {
	var errs []error
	if c.kcm != nil {
		if err := c.kcm.Stop(controllerManagerStopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("stop kube-controller-manager: %w", err))
		}
		c.kcm = nil
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop the control plane: %w", err))
		}
		c.env = nil
	}
	for _, f := range c.logs {
		_ = f.Close()
	}
	c.logs = nil
	if c.dir != "" {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove the cluster's temporary dir: %w", err))
		}
		c.dir = ""
	}
	return errors.Join(errs...)
}
