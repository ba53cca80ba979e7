package main

import (
	"context"
	"os"
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
	"--workflow-dirs=" + devWorkflowDirs(),
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

// devWorkflowDirs is the manager's WORKFLOW_DIRS: the repository's workflows/, then the
// directories of WORKFLOW_DIRS in the shell, so that an organisation's overlay can be tried
// (a later directory overrides an earlier one's workflow of the same name).
func devWorkflowDirs() string {
	if extra := os.Getenv("WORKFLOW_DIRS"); extra != "" {
		return devWorkflowDir + ":" + extra
	}
	return devWorkflowDir
}

// devGitHubWebhookSecret signs deliveries to the github-issue-triage webhook that
// workflows/github_issue_triage.py declares, unless GITHUB_WEBHOOK_SECRET is set already.
const devGitHubWebhookSecret = "dev-only-fake-github-webhook-secret-do-not-use"

// managerProc is the manager binary running as our child, in its own process group.
type managerProc struct{ *testcluster.ManagerProcess }

// startManager runs bin with args against the dev cluster's kubeconfig, its output passed
// through to ours. args fix every listener on loopback (defaultManagerArgs).
//
// The manager gets its own process group so that a Ctrl-C in the terminal reaches only us:
// controller-runtime's signal handler exits at once on a second signal, so if the manager saw
// the terminal's SIGINT and then our SIGTERM it would skip its graceful shutdown. It gets
// SIGTERM should we die without stopping it (kill -9), so it never outlives us.
func startManager(bin, kubeconfig string, args []string) (*managerProc, error) {
	var env []string
	if os.Getenv("GITHUB_WEBHOOK_SECRET") == "" {
		env = append(env, "GITHUB_WEBHOOK_SECRET="+devGitHubWebhookSecret)
	}
	m, err := testcluster.StartManagerProcess(testcluster.ManagerProcessOptions{
		Binary: bin, Kubeconfig: kubeconfig, Args: args, Env: env, Output: os.Stdout, DeathSignal: syscall.SIGTERM,
	})
	if err != nil {
		return nil, err
	}
	return &managerProc{m}, nil
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

// readiness is how waitReady ended.
type readiness int

const (
	ready         readiness = iota // the probes and the API answered
	notReadyYet                    // the timeout passed; the manager still runs
	managerExited                  // the manager exited while we waited
	interrupted                    // a stop signal arrived while we waited
)

// waitReady waits until the manager is ready (its /readyz and its API answer), it exits, a
// signal arrives on sigs or timeout passes; the error says what was not ready. A signal that
// arrives is consumed: the caller stops.
func waitReady(m *managerProc, sigs <-chan os.Signal, timeout time.Duration) (readiness, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	signalled, watched := false, make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sigs:
			signalled = true
			cancel()
		case <-ctx.Done():
		}
	}()
	err := m.WaitReady(ctx)
	cancel()
	<-watched // signalled is final once the watcher has returned
	switch {
	case signalled:
		return interrupted, nil
	case err == nil:
		return ready, nil
	case m.Exited():
		return managerExited, err
	default:
		return notReadyYet, err
	}
}
