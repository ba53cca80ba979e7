package testcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// ManagerProcessOptions say how to run the operator's manager binary (bin/manager, or
// hack/testmanager built with Build) against a cluster.
type ManagerProcessOptions struct {
	// Binary is the manager binary.
	Binary string
	// Kubeconfig is the kubeconfig the manager connects with (its KUBECONFIG).
	Kubeconfig string
	// Args are the manager's flags. They follow the listener flags StartManagerProcess puts
	// first (metrics, probes and API, each on a free loopback port), so a listener flag here
	// overrides it: the last occurrence of a flag wins, as in Go's flag package.
	Args []string
	// Env is added to the manager's environment.
	Env []string
	// LogFile, when set, is created and receives the manager's stdout and stderr; Output is
	// then ignored.
	LogFile string
	// Output receives the manager's stdout and stderr when there is no LogFile; nil drops them.
	Output io.Writer
	// DeathSignal is what the manager gets should this process die without stopping it (see
	// ProcessOptions): SIGKILL by default.
	DeathSignal syscall.Signal
}

// Listeners are the base URLs (http://127.0.0.1:PORT) where a manager's HTTP listeners answer;
// a listener that is off has "".
type Listeners struct {
	// Metrics serves /metrics.
	Metrics string
	// Probes serves /healthz and /readyz.
	Probes string
	// API serves the webhooks and the REST API under /api and the web console at /.
	API string
}

// ManagerProcess is a manager binary running as this process's child in its own process
// group; stop it with the Process's Stop, StopOrForce or Kill.
type ManagerProcess struct {
	*Process
	// Listeners are where its listeners answer, from the flags it was started with.
	Listeners Listeners
	// LogFile is the file its output goes to, or "".
	LogFile string
}

// StartManagerProcess starts the manager binary with each listener on a free loopback port
// (unless o.Args says otherwise) and KUBECONFIG set. It does not wait: call WaitReady.
func StartManagerProcess(o ManagerProcessOptions) (*ManagerProcess, error) {
	var listen []string
	for _, flag := range []string{"metrics-bind-address", "health-probe-bind-address", "api-bind-address"} {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		listen = append(listen, "--"+flag+"="+addr)
	}
	args := append(listen, o.Args...)
	out := o.Output
	if o.LogFile != "" {
		f, err := os.Create(o.LogFile)
		if err != nil {
			return nil, fmt.Errorf("create the manager's log: %w", err)
		}
		// The child gets its own descriptor of the file; ours is not needed after the start.
		defer func() { _ = f.Close() }()
		out = f
	}
	p, err := StartProcess(ProcessOptions{
		Binary: o.Binary, Args: args, Output: out, DeathSignal: o.DeathSignal,
		Env: append([]string{"KUBECONFIG=" + o.Kubeconfig}, o.Env...),
	})
	if err != nil {
		return nil, fmt.Errorf("start the manager: %w", err)
	}
	return &ManagerProcess{Process: p, Listeners: ListenersOf(args), LogFile: o.LogFile}, nil
}

// StartManagerReady starts the manager process and waits up to timeout for WaitReady; a
// manager that does not get ready is killed.
func StartManagerReady(ctx context.Context, o ManagerProcessOptions, timeout time.Duration) (*ManagerProcess, error) {
	m, err := StartManagerProcess(o)
	if err != nil {
		return nil, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := m.WaitReady(readyCtx); err != nil {
		_ = m.Kill()
		return nil, err
	}
	return m, nil
}

// WaitReady waits until the manager's readiness probe answers 200 and then its API server
// (a runnable of its own, listening a moment after the probes) serves the OpenAPI document;
// a listener that is off is not waited for. It fails when the manager exits or ctx ends first,
// naming the log file if there is one.
func (m *ManagerProcess) WaitReady(ctx context.Context) error {
	for _, url := range []string{urlWithPath(m.Listeners.Probes, "/readyz"), urlWithPath(m.Listeners.API, "/api/openapi.json")} {
		if url == "" {
			continue
		}
		if err := m.WaitHTTP(ctx, url); err != nil {
			if m.LogFile != "" {
				return fmt.Errorf("wait for the manager (log %s): %w", m.LogFile, err)
			}
			return fmt.Errorf("wait for the manager: %w", err)
		}
	}
	return nil
}

// urlWithPath appends path to base, or returns "" for a listener that is off.
func urlWithPath(base, path string) string {
	if base == "" {
		return ""
	}
	return base + path
}

// ListenersOf reads where a manager started with args listens, from the last occurrence of
// each listener flag (absent or "0": off).
func ListenersOf(args []string) Listeners {
	return Listeners{
		Metrics: localURL(lastFlagValue(args, "metrics-bind-address")),
		Probes:  localURL(lastFlagValue(args, "health-probe-bind-address")),
		API:     localURL(lastFlagValue(args, "api-bind-address")),
	}
}

// lastFlagValue returns the value of the last occurrence of the flag name (without dashes) in
// args, in any of Go's forms (-name=v, --name=v, -name v, --name v), or "" when it is absent.
// The last occurrence wins, as it does in Go's flag package.
func lastFlagValue(args []string, name string) string {
	value := ""
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == args[i] {
			continue // not a flag
		}
		switch {
		case strings.HasPrefix(a, name+"="):
			value = strings.TrimPrefix(a, name+"=")
		case a == name && i+1 < len(args):
			value = args[i+1]
			i++
		}
	}
	return value
}

// localURL turns a listen address such as ":8081" or "0.0.0.0:8081" into an http URL on
// loopback. It returns "" when the address is disabled ("0", port 0) or unparsable.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
