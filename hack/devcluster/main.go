// Command devcluster is the engine of `make dev`: it runs a local Kubernetes control plane
// (etcd and kube-apiserver from bin/k8s, started by controller-runtime's envtest, and
// kube-controller-manager's garbage collector and namespace controller, so that deleting a run
// deletes what it owns and `kubectl delete namespace` finishes) whose data lives in .dev/ and
// survives restarts, installs the CRDs, writes an admin kubeconfig and a REST API key, and runs
// bin/manager against it until Ctrl-C.
//
// It exists so that a newcomer can try the operator with one command and no Docker, kind or
// internet. Run it from the repository root (hack/dev.sh does):
//
//	bash hack/dev.sh [--no-manager] [--manager-args="--max-concurrent-reconciles=4"]
//
// Everything it writes is under .dev/: lock, etcd/ (the cluster's data), kubeconfig, api-key,
// logs/ and children. `rm -rf .dev` (while it is stopped) starts over from an empty cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// readyTimeout bounds how long we wait for the manager to be ready (its /readyz and its API)
// before printing the usage anyway.
const readyTimeout = time.Minute

// options are devcluster's command-line flags.
type options struct {
	managerArgs string
	noManager   bool
}

// paths are the files devcluster reads and writes, all absolute.
type paths struct {
	root       string // the repository root (the working directory)
	dev        string // .dev: everything we write
	lock       string // .dev/lock: flock held while we run
	etcd       string // .dev/etcd: etcd's data dir, kept across runs
	kubeconfig string // .dev/kubeconfig: admin kubeconfig, rewritten on every start
	apiKey     string // .dev/api-key: the REST API key, kept across runs
	children   string // .dev/children: our child processes, for cleanup after a crash
	logs       string // .dev/logs: etcd, kube-apiserver and kube-controller-manager output
	crds       string // config/crd/bases: the CRDs to install
	assets     string // bin/k8s or $KUBEBUILDER_ASSETS: the control plane's binaries
	manager    string // bin/manager
}

// main runs the dev cluster and exits 1 with the reason when start-up fails, when another
// devcluster holds the lock, or when the manager exits on its own; a stop signal exits 0.
func main() {
	o := parseFlags()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

// parseFlags reads devcluster's flags; -h lists them.
func parseFlags() options {
	var o options
	flag.StringVar(&o.managerArgs, "manager-args", "", "Extra flags for bin/manager, split on spaces and appended to the defaults (a later flag wins), e.g. \"--max-concurrent-reconciles=4\".")
	flag.BoolVar(&o.noManager, "no-manager", false, "Run only the control plane; start the manager yourself (e.g. from an IDE) with KUBECONFIG=.dev/kubeconfig.")
	flag.Parse()
	return o
}

// logf prints one of devcluster's own messages, marked so they stand out from the manager's logs.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "devcluster: "+format+"\n", args...)
}

// run is the whole life of a dev cluster. Every resource it starts is released by a deferred
// call, in reverse order (manager, then control plane, then the lock), on every return path.
func run(o options) error {
	// envtest logs through controller-runtime; without a logger it prints a warning instead.
	// Info level keeps its errors (a failed start is retried) and drops its debug chatter.
	ctrllog.SetLogger(zap.New(zap.ConsoleEncoder(), zap.WriteTo(os.Stderr)))

	// Catch signals before anything starts: a Ctrl-C during start-up must still clean up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	p, err := resolvePaths()
	if err != nil {
		return err
	}
	if err := checkPrerequisites(p, o); err != nil {
		return err
	}
	if err := os.MkdirAll(p.dev, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", p.dev, err)
	}
	lock, err := acquireLock(p.lock)
	if err != nil {
		return err
	}
	defer lock.release()
	if err := stopLeftovers(p.children); err != nil {
		return err
	}

	logf("starting etcd, kube-apiserver and kube-controller-manager (garbage collection, namespace deletion) from %s (data in %s)", p.assets, rel(p, p.etcd))
	cp, err := startControlPlane(p)
	if err != nil {
		return err
	}
	defer func() {
		logf("stopping kube-controller-manager, kube-apiserver and etcd")
		cp.stop()
		_ = os.Remove(p.children)
		logf("stopped; the cluster's data stays in %s for the next `make dev`", rel(p, p.etcd))
	}()
	if err := recordChildren(p.children); err != nil {
		return err
	}
	if stopRequested(sigs) {
		return nil
	}
	if err := prepareAccess(cp, p); err != nil {
		return err
	}

	if o.noManager {
		printUsage(p, cp, testcluster.Listeners{})
		logf("running without the manager: start it with KUBECONFIG=%s go run . --dev", rel(p, p.kubeconfig))
		<-sigs
		return nil
	}
	return runManager(o, p, cp, sigs)
}

// runManager starts bin/manager, prints the usage once it is ready and waits for a stop signal
// or for the manager to exit. It stops the manager before returning.
func runManager(o options, p paths, cp *controlPlane, sigs <-chan os.Signal) error {
	args := append(append([]string{}, defaultManagerArgs...), strings.Fields(o.managerArgs)...)
	logf("starting %s %s", rel(p, p.manager), strings.Join(args, " "))
	m, err := startManager(p.manager, p.kubeconfig, args)
	if err != nil {
		return err
	}
	defer m.stop(sigs)
	if err := recordChildren(p.children); err != nil {
		return err
	}

	switch ready, err := waitReady(m, sigs, readyTimeout); ready {
	case interrupted:
		return nil
	case managerExited:
		return fmt.Errorf("the manager exited during start-up (%s); see its log above", m.ExitDescription())
	case notReadyYet:
		logf("the manager is not ready after %s (%v); see its log above", readyTimeout, err)
	}
	printUsage(p, cp, m.Listeners)

	select {
	case <-sigs:
		return nil
	case <-m.Done():
		return fmt.Errorf("the manager exited on its own (%s); see its log above", m.ExitDescription())
	}
}

// prepareAccess writes the admin kubeconfig and makes sure the REST API key and the web
// console's session secret exist.
func prepareAccess(cp *controlPlane, p paths) error {
	if err := cp.writeKubeconfig(p.kubeconfig); err != nil {
		return err
	}
	c, err := client.New(cp.config(), client.Options{})
	if err != nil {
		return fmt.Errorf("create a client for the dev cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ensureDevAPIKey(ctx, c, p.apiKey); err != nil {
		return fmt.Errorf("prepare the dev API key: %w", err)
	}
	if err := ensureConsoleSecret(ctx, c); err != nil {
		return fmt.Errorf("prepare the web console's session secret: %w", err)
	}
	return nil
}

// stopRequested reports, without blocking, whether a stop signal has arrived.
func stopRequested(sigs <-chan os.Signal) bool {
	select {
	case <-sigs:
		return true
	default:
		return false
	}
}

// resolvePaths derives every path from the working directory, which must be the repository root.
func resolvePaths() (paths, error) {
	root, err := os.Getwd()
	if err != nil {
		return paths{}, fmt.Errorf("find the working directory: %w", err)
	}
	dev := filepath.Join(root, ".dev")
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, "bin", "k8s")
	}
	assets, err = filepath.Abs(assets)
	if err != nil {
		return paths{}, fmt.Errorf("resolve KUBEBUILDER_ASSETS: %w", err)
	}
	return paths{
		root:       root,
		dev:        dev,
		lock:       filepath.Join(dev, "lock"),
		etcd:       filepath.Join(dev, "etcd"),
		kubeconfig: filepath.Join(dev, "kubeconfig"),
		apiKey:     filepath.Join(dev, "api-key"),
		children:   filepath.Join(dev, "children"),
		logs:       filepath.Join(dev, "logs"),
		crds:       filepath.Join(root, "config", "crd", "bases"),
		assets:     assets,
		manager:    filepath.Join(root, "bin", "manager"),
	}, nil
}

// checkPrerequisites fails early, saying which make target fixes it, when a binary or the CRDs
// are missing.
func checkPrerequisites(p paths, o options) error {
	if _, err := os.Stat(filepath.Join(p.root, "go.mod")); err != nil {
		return fmt.Errorf("run devcluster from the repository root (make dev and hack/dev.sh do): %w", err)
	}
	need := []struct{ path, fix string }{
		{filepath.Join(p.assets, "etcd"), "make control-plane"},
		{filepath.Join(p.assets, "kube-apiserver"), "make control-plane"},
		{filepath.Join(p.assets, "kube-controller-manager"), "make control-plane"},
		{p.crds, "make manifests"},
	}
	if !o.noManager {
		need = append(need, struct{ path, fix string }{p.manager, "make build"})
	}
	var errs []error
	for _, n := range need {
		if _, err := os.Stat(n.path); err != nil {
			errs = append(errs, fmt.Errorf("%s is missing: run `%s` (%w)", rel(p, n.path), n.fix, err))
		}
	}
	return errors.Join(errs...)
}

// rel shortens path to be relative to the repository root, for messages.
func rel(p paths, path string) string {
	if r, err := filepath.Rel(p.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// printUsage tells the newcomer what runs where and what to type next. l are the manager's
// listeners, none without a manager.
func printUsage(p paths, cp *controlPlane, l testcluster.Listeners) {
	var b strings.Builder
	b.WriteString("\n=== Centaur dev cluster is ready ===\n\n")
	fmt.Fprintf(&b, "  kube-apiserver  %s (etcd data in %s, kept across restarts)\n", cp.apiServerURL(), rel(p, p.etcd))
	fmt.Fprintf(&b, "  control plane   logs in %s/\n", rel(p, p.logs))
	if l.API != "" {
		fmt.Fprintf(&b, "  web console     %s/  (sign in with the API key)\n", l.API)
		fmt.Fprintf(&b, "  REST API        %s/api\n", l.API)
	}
	if key, err := readAPIKey(p.apiKey); err == nil {
		fmt.Fprintf(&b, "  API key         %s  (in %s)\n", key, rel(p, p.apiKey))
	}
	if l.Probes != "" {
		fmt.Fprintf(&b, "  health          %s/healthz\n", l.Probes)
	}
	fmt.Fprintf(&b, "  workflow files  %s (*.py, *.star), reloaded when you edit or add one\n", strings.ReplaceAll(devWorkflowDirs(), ":", ", "))
	b.WriteString("\nTry:\n\n")
	b.WriteString("  export KUBECONFIG=$PWD/.dev/kubeconfig\n")
	b.WriteString("  kubectl --kubeconfig .dev/kubeconfig get wfr\n")
	b.WriteString("  kubectl --kubeconfig .dev/kubeconfig apply -f config/samples/\n")
	b.WriteString("  kubectl --kubeconfig .dev/kubeconfig get wfr -w\n")
	api := l.API
	if api == "" {
		api = testcluster.ListenersOf(defaultManagerArgs).API
	}
	fmt.Fprintf(&b, "  export CENTAUR_API_URL=%s/api\n", api)
	b.WriteString("  export CENTAUR_API_KEY=$(cat .dev/api-key)\n")
	b.WriteString("\nCtrl-C stops everything; `make dev` again resumes with the same runs. ")
	b.WriteString("Stop it and `rm -rf .dev` to start from an empty cluster.\n\n")
	fmt.Print(b.String())
}
