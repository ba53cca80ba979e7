package testcluster

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Build compiles the main package pkg (an import path or a ./relative path, resolved from the
// module root) into out. race adds the race detector; a test run with -race should pass true,
// so the build reuses the packages the test already compiled.
func Build(ctx context.Context, pkg, out string, race bool) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

// ProcessOptions say how to run a program.
type ProcessOptions struct {
	// Binary is the program to run.
	Binary string
	// Args are its arguments.
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Output receives the program's stdout and stderr; nil drops them.
	Output io.Writer
	// DeathSignal is what the program gets should this process die without stopping it:
	// SIGKILL by default (a crash), SIGTERM to let it shut down gracefully (`make dev`).
	DeathSignal syscall.Signal
}

// Process is a program running as this process's child in its own process group.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProcess starts the program. It gets its own process group, so that killing it reaches
// anything it started and a Ctrl-C in the terminal reaches only this process, and it gets
// o.DeathSignal should this process die first. (Linux ties that signal to the thread that
// started the child; the Go runtime ends a thread only when a goroutine locked to it exits,
// which nothing here does.)
func StartProcess(o ProcessOptions) (*Process, error) {
	cmd := exec.Command(o.Binary, o.Args...)
	cmd.Env = append(os.Environ(), o.Env...)
	cmd.Stdout, cmd.Stderr = o.Output, o.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: cmp.Or(o.DeathSignal, syscall.SIGKILL)}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitDescription says how the process ended ("exit status 0" when it succeeded); call it
// after Done is closed.
func (p *Process) ExitDescription() string {
	if p.err == nil {
		return "exit status 0"
	}
	return p.err.Error()
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the process group, as a crash would end it, and waits until it is
// reaped.
func (p *Process) Kill() error {
	if err := signalGroup(p.PID(), syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop asks the process to shut down with SIGTERM and kills its group after timeout.
func (p *Process) Stop(timeout time.Duration) error {
	_, err := p.StopOrForce(timeout, nil)
	return err
}

// StopOrForce is Stop that also kills the group at once when force delivers (a second Ctrl-C).
// It reports whether the process had to be killed (timeout or force) rather than stopping.
// Either way it returns once nothing is left in the process's group.
func (p *Process) StopOrForce(timeout time.Duration, force <-chan os.Signal) (killed bool, err error) {
	if !p.Exited() {
		if err := signalGroup(p.PID(), syscall.SIGTERM); err != nil {
			return false, err
		}
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			killed = true
		case <-force:
			killed = true
		}
	}
	return killed, p.Kill()
}

// handedOut holds the addresses FreeAddr returned in this process. The kernel may offer a port
// again as soon as the probe's listener closed, so two calls in a row (a manager's metrics and
// probe addresses) could get the same one and the second listener would fail to bind.
var handedOut sync.Map

// FreeAddr returns a loopback address with a port that was free a moment ago and that it has
// not returned before in this process.
func FreeAddr() (string, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			return "", fmt.Errorf("release the free port: %w", err)
		}
		if _, returned := handedOut.LoadOrStore(addr, true); !returned {
			return addr, nil
		}
	}
	return "", fmt.Errorf("find a free port: the kernel offered only ports handed out already")
}

// WaitHTTP polls url until it answers 200, the process exits or ctx ends.
func (p *Process) WaitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := client.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("the process exited while waiting for %s: %v", url, p.err)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", url, ctx.Err())
		case <-tick.C:
		}
	}
}

// Sleep waits d, or until ctx ends, in which case it returns ctx's error: the pause of a
// harness (the benchmark's phases, the crash test's kill cadence) that a Ctrl-C cuts short.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
