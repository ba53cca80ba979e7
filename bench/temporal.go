package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// The batched figure is judged against Temporal's local activities, the same trade (a batch of
// cheap activities recorded with the next workflow task) in the most used durable engine. The
// peer is a small program kept outside this module (../shared/peers/temporal by default): an
// in-process Temporal server (temporaltest) and a worker running one workflow of N sequential
// no-op local activities, timed from ExecuteWorkflow to its result. The benchmark builds it
// (the first build compiles the Temporal server: a few minutes) and runs it beside our
// figure, alternating, on the same machine.

// defaultTemporalPeer is the peer's directory, relative to the module root.
const defaultTemporalPeer = "../shared/peers/temporal"

// temporalFigure is the peer's steps/s, or why it was not measured.
type temporalFigure struct {
	stepsPerSec float64
	note        string
}

// buildTemporalPeer builds the peer into the work dir and returns the binary's path, or ""
// with the reason in note when there is no peer to run.
func (h *harness) buildTemporalPeer(ctx context.Context) (bin, note string) {
	if h.cfg.temporalPeer == "" {
		return "", "not measured: no peer given (-temporal-peer)"
	}
	dir := h.cfg.temporalPeer
	if !filepath.IsAbs(dir) {
		root, err := testcluster.ModuleRoot()
		if err != nil {
			return "", err.Error()
		}
		dir = filepath.Join(root, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		return "", fmt.Sprintf("not measured: no Temporal peer at %s", dir)
	}
	bin = filepath.Join(h.dir, "temporal-peer")
	h.logf("building the Temporal peer in %s (the first build compiles the Temporal server: minutes)", dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("not measured: the Temporal peer did not build: %v: %s", err, lastLine(out))
	}
	return bin, ""
}

// peerLine is the peer's report of its runs: "temporal: 1 runs x 1000 steps: 183ms -> 5.5 runs/s, 5451 steps/s".
var peerLine = regexp.MustCompile(`temporal: 1 runs x (\d+) steps: .* -> .* runs/s, ([0-9.]+) steps/s`)

// runTemporalPeer runs one workflow of steps sequential no-op local activities in the peer and
// returns its steps/s.
func (h *harness) runTemporalPeer(ctx context.Context, steps int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.temporalBin, "-local", "-runs", "1", "-steps", strconv.Itoa(steps))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("run %s: %w: %s", h.temporalBin, err, lastLine(out))
	}
	m := peerLine.FindSubmatch(out)
	if m == nil || string(m[1]) != strconv.Itoa(steps) {
		return 0, fmt.Errorf("the peer's output has no line for 1 run of %d steps: %s", steps, lastLine(out))
	}
	return strconv.ParseFloat(string(m[2]), 64)
}

// lastLine is the last non-empty line of out, for error messages.
func lastLine(out []byte) string {
	lines := regexp.MustCompile(`[^\n]+`).FindAll(out, -1)
	if len(lines) == 0 {
		return "(no output)"
	}
	return string(lines[len(lines)-1])
}
