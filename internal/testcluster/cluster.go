// Package testcluster runs the real control plane and the real manager as OS processes for the
// benchmark (bench/), the crash test (hack/chaos/) and the dev cluster (hack/devcluster, `make
// dev`): etcd and kube-apiserver from bin/k8s, started through envtest, and the manager binary
// built from the module.
//
// Unlike envtest's defaults, etcd keeps its data in a directory the caller owns and runs with
// fsync on: envtest passes --unsafe-no-fsync, which makes every write faster than a real
// cluster's and lets a killed etcd lose acknowledged writes. The benchmark measures the engine
// against the limit of durable writes, and the crash test kills etcd while runs are in flight,
// so both need the real thing.
package testcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure a control plane.
type Options struct {
	// AssetsDir holds the etcd and kube-apiserver binaries. Default: $KUBEBUILDER_ASSETS, else
	// bin/k8s under the module root.
	AssetsDir string
	// DataDir is etcd's data directory; it is kept on Stop. Default: a temporary directory that
	// Stop removes.
	DataDir string
	// LogDir receives etcd.log and kube-apiserver.log. Default: the process's output is dropped.
	LogDir string
	// UnsafeNoFsync turns etcd's fsync off, as envtest does by default. Leave it false to
	// measure and test against durable writes.
	UnsafeNoFsync bool
	// CRDDir holds the CRDs to install. Default: config/crd/bases under the module root.
	CRDDir string
}

// Cluster is a running etcd and kube-apiserver with the operator's CRDs installed.
type Cluster struct {
	env     *envtest.Environment
	cfg     *rest.Config
	tempDir string
	logs    []*os.File
}

// Start starts etcd and kube-apiserver and installs the CRDs. Call Stop when done, also after
// an error of a later call, so that no process outlives the caller.
func Start(o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	if o.DataDir == "" {
		if c.tempDir, err = os.MkdirTemp("", "centaur-etcd-"); err != nil {
			return nil, fmt.Errorf("create etcd's data dir: %w", err)
		}
		o.DataDir = c.tempDir
	}
	etcd := &envtest.Etcd{Path: filepath.Join(o.AssetsDir, "etcd"), DataDir: o.DataDir, StartTimeout: time.Minute}
	if !o.UnsafeNoFsync {
		// envtest adds --unsafe-no-fsync=true whenever the binary knows the flag; Disable
		// keeps it off the command line, so etcd fsyncs every commit as in production.
		etcd.Configure().Disable("unsafe-no-fsync")
	}
	etcd.Configure().Set("log-level", "warn")
	api := &envtest.APIServer{Path: filepath.Join(o.AssetsDir, "kube-apiserver"), StartTimeout: time.Minute}
	if err := c.attachLogs(o.LogDir, etcd, api); err != nil {
		c.cleanup()
		return nil, err
	}
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
		_ = c.Stop()
		return nil, fmt.Errorf("start etcd and kube-apiserver from %s: %w", o.AssetsDir, err)
	}
	// No client-side rate limit: the API server's priority and fairness is the only limit,
	// as in the manager (controller-runtime's GetConfig does the same).
	cfg.QPS, cfg.Burst = -1, 0
	c.cfg = cfg
	return c, nil
}

// withDefaults fills in the directories the caller left empty.
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
	for _, bin := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(o.AssetsDir, bin)); err != nil {
			return o, fmt.Errorf("find %s in %s (run `make control-plane`): %w", bin, o.AssetsDir, err)
		}
	}
	return o, nil
}

// attachLogs sends etcd's and kube-apiserver's output to files in dir, when dir is set.
func (c *Cluster) attachLogs(dir string, etcd *envtest.Etcd, api *envtest.APIServer) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the log dir: %w", err)
	}
	open := func(name string) (*os.File, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		c.logs = append(c.logs, f)
		return f, nil
	}
	etcdLog, err := open("etcd.log")
	if err != nil {
		return err
	}
	apiLog, err := open("kube-apiserver.log")
	if err != nil {
		return err
	}
	etcd.Out, etcd.Err = etcdLog, etcdLog
	api.Out, api.Err = apiLog, apiLog
	return nil
}

// Config returns an admin client configuration without a client-side rate limit.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.cfg) }

// Env is the envtest environment that runs the control plane, for what needs it beside the
// cluster (testenv.StartControllerManager).
func (c *Cluster) Env() *envtest.Environment { return c.env }

// AdminKubeconfig provisions an admin user (group system:masters) called name and returns its
// kubeconfig, which holds the user's private key.
func (c *Cluster) AdminKubeconfig(name string) ([]byte, error) {
	user, err := c.env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("provision the admin user %s: %w", name, err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("render the admin kubeconfig: %w", err)
	}
	return raw, nil
}

// WriteKubeconfig provisions an admin user and writes its kubeconfig to path (mode 0600), for
// the manager processes.
func (c *Cluster) WriteKubeconfig(path string) error {
	raw, err := c.AdminKubeconfig("centaur-harness")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write the kubeconfig: %w", err)
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

// Stop stops kube-apiserver and etcd and removes the temporary data dir, if Start made one.
func (c *Cluster) Stop() error {
	var errs []error
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop the control plane: %w", err))
		}
	}
	c.cleanup()
	return errors.Join(errs...)
}

// cleanup closes the log files and removes the temporary data dir.
func (c *Cluster) cleanup() {
	for _, f := range c.logs {
		_ = f.Close()
	}
	c.logs = nil
	if c.tempDir != "" {
		_ = os.RemoveAll(c.tempDir)
		c.tempDir = ""
	}
}
