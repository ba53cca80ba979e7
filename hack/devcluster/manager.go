package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// managerStopTimeout is how long the manager may take to finish its steps and requests after
// SIGTERM before it is killed.
const managerStopTimeout = 15 * time.Second

// defaultManagerArgs bind every listener of the manager to loopback, so a dev cluster never
// exposes the API on the network, with human-readable logs.
var defaultManagerArgs = []string{
	"--dev",
	"--workflow-dirs=" + devWorkflowDir,
	// One person's cluster: any namespace may claim any webhook slug. A shared cluster grants
	// slugs per namespace (docs/webhooks.md, "Who may claim a slug").
	"--webhook-slug-grants=*=*",
	"--secret-namespaces=*",
	"--api-bind-address=127.0.0.1:8088",
	"--metrics-bind-address=127.0.0.1:8080",
	"--health-probe-bind-address=127.0.0.1:8081",
}

// devWorkflowDir is the repository's own directory of workflow files: edit one (or drop a new
// one in) while make dev runs and the manager reloads it.
const devWorkflowDir = "workflows"

// devGitHubWebhookSecret signs deliveries to the github-issue-triage webhook that
// workflows/github_issue_triage.star declares, unless GITHUB_WEBHOOK_SECRET is set already.
const devGitHubWebhookSecret = "dev-only-fake-github-webhook-secret-do-not-use"

// managerProc is the manager binary running as our child, in its own process group.
type managerProc struct{ *testcluster.Process }

// startManager runs bin with args against the dev cluster's kubeconfig, its output passed
// through to ours.
//
// The manager gets its own process group so that a Ctrl-C in the terminal reaches only us:
// controller-runtime's signal handler exits at once on a second signal, so if the manager saw
// the terminal's SIGINT and then our SIGTERM it would skip its graceful shutdown. It gets
// SIGTERM should we die without stopping it (kill -9), so it never outlives us.
func startManager(bin, kubeconfig string, args []string) (*managerProc, error) {
	env := []string{"KUBECONFIG=" + kubeconfig}
	if os.Getenv("GITHUB_WEBHOOK_SECRET") == "" {
		env = append(env, "GITHUB_WEBHOOK_SECRET="+devGitHubWebhookSecret)
	}
	p, err := testcluster.StartProcess(testcluster.ProcessOptions{
		Binary: bin, Args: args, Env: env, Output: os.Stdout, DeathSignal: syscall.SIGTERM,
	})
	if err != nil {
		return nil, fmt.Errorf("start the manager: %w", err)
	}
	return &managerProc{p}, nil
}

// stop sends SIGTERM to the manager's process group and waits up to managerStopTimeout, or
// until a signal arrives on force (a second Ctrl-C), before killing the group. It returns once
// the manager has been reaped and nothing is left in its group.
func (m *managerProc) stop(force <-chan os.Signal) {
	if !m.Exited() {
		logf("stopping the manager (pid %d, up to %s; Ctrl-C again to kill it now)", m.PID(), managerStopTimeout)
	}
	killed, err := m.StopOrForce(managerStopTimeout, force)
	if killed {
		logf("killed the manager: it had not stopped (within %s, or before a second Ctrl-C)", managerStopTimeout)
	}
	if err != nil {
		logf("stop the manager: %v", err)
	}
}

// lastFlagValue returns the value of the last occurrence of the flag name (without dashes) in
// args, in any of Go's forms (-name=v, --name=v, -name v, --name v), or def when it is absent.
// The last occurrence wins, as it does in Go's flag package, so --manager-args can override
// defaultManagerArgs.
func lastFlagValue(args []string, name, def string) string {
	value := def
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
// loopback with path appended. It returns "" when the address is disabled ("0") or unparsable.
func localURL(addr, path string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + path
}

// readiness is how waitReady ended.
type readiness int

const (
	ready         readiness = iota // /readyz answered 200
	notReadyYet                    // the timeout passed; the manager still runs
	managerExited                  // the manager exited while we waited
	interrupted                    // a stop signal arrived while we waited
)

// waitReady polls the manager's /readyz at url until it answers 200, the manager exits, a
// signal arrives on sigs or timeout passes. An empty url (probes disabled) counts as ready.
func waitReady(url string, m *managerProc, sigs <-chan os.Signal, timeout time.Duration) readiness {
	if url == "" {
		return ready
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return ready
			}
		}
		select {
		case <-m.Done():
			return managerExited
		case <-sigs:
			return interrupted
		case <-deadline.C:
			return notReadyYet
		case <-tick.C:
		}
	}
}
