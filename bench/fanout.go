package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// The flood figure's third part is issue #21's: one request that asks for unbounded objects. A
// fan_out run over cfg.fanOutNames names (100,000 at full size: about 1 MiB of JSON, just under
// the REST API's body limit) is started through POST /api/workflows/runs with an API key, as a
// user would, and executed by a manager of its own with the default --max-children-per-run,
// with etcd at its production quota (2 GiB). It is judged by the run's end (Failed with
// TooManyChildren, the clear answer to the request over budget), by the child runs that exist
// (the cap, not one more), by "database space exceeded" anywhere (the answer, the manager's,
// kube-apiserver's and etcd's logs: none), and by the manager's peak RSS against its limit.

// fanOutNamespace holds the fan_out run and its children.
const fanOutNamespace = "bench-fanout"

// spaceExceededText is etcd's answer past its quota.
const spaceExceededText = "database space exceeded"

// fanOutFigures is what the fan-out measured.
type fanOutFigures struct {
	// names is the length of the run's list of names; requestBytes the size of the start
	// request's body.
	names, requestBytes int
	// answer is the start request's status ("error" for a failed exchange).
	answer string
	// phase, reason and message are the run's end.
	phase, reason, message string
	// children counts the child runs that exist once the run ended; unfinished those of them
	// not final when the figure stopped waiting.
	children, unfinished int
	// cap is the manager's --max-children-per-run.
	cap int
	// spaceExceeded counts "database space exceeded" in the answer and the logs.
	spaceExceeded int
	// took is from the request to the run's end (or to the end of the wait for it).
	took time.Duration
	// etcdBytes is the size of etcd's database file once the run ended, against its quota.
	etcdBytes int64
	// peakRSS is the fan-out manager's VmHWM once the run and its children ended.
	peakRSS int64
	// problems describes each expectation the fan-out did not meet.
	problems []string
}

// measureFanOut starts a fan_out run over cfg.fanOutNames names through the REST API, waits
// for it and its children to end, and records what the figure is judged by.
func (h *harness) measureFanOut(ctx context.Context, limit int64, f *fanOutFigures) error {
	f.names = h.cfg.fanOutNames
	for _, ns := range []string{fanOutNamespace, keysNamespace} {
		if err := h.ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	key, err := h.grantAPIKey(ctx, "bench-fanout", fanOutNamespace)
	if err != nil {
		return err
	}
	// The floods' runs were created and never executed; a manager that executes runs would
	// start on them, so they go first (the floods are judged already).
	for _, ns := range []string{webhookNamespace, openNamespace} {
		if err := h.deleteRuns(ctx, ns); err != nil {
			return err
		}
	}
	if err := h.maintainEtcd(ctx, "before the fan-out"); err != nil {
		return err
	}
	body, err := fanOutRequest(f.names)
	if err != nil {
		return err
	}
	f.requestBytes = len(body)
	if len(body) > restapi.MaxBodyBytes {
		return fmt.Errorf("a fan_out request over %d names is %d bytes, over the REST API's body limit of %d bytes: lower -fan-out-names",
			f.names, len(body), restapi.MaxBodyBytes)
	}
	logs := []string{filepath.Join(h.dir, "logs", "kube-apiserver.log"), filepath.Join(h.dir, "logs", "etcd.log")}
	offsets := make([]int64, len(logs))
	for i, path := range logs {
		if st, err := os.Stat(path); err == nil {
			offsets[i] = st.Size()
		}
	}
	f.cap = engine.DefaultMaxChildren
	var capArgs []string
	if h.cfg.fanOutCap > 0 {
		f.cap = h.cfg.fanOutCap
		capArgs = append(capArgs, fmt.Sprintf("--max-children-per-run=%d", f.cap))
	}
	m, err := h.startManager(ctx, capArgs...)
	if err != nil {
		return err
	}
	defer m.stop()

	sent := time.Now()
	id, answer, err := postRun(ctx, m.apiURL+"/api/workflows/runs", key, body)
	f.answer = answer.status
	f.spaceExceeded += bytes.Count(answer.body, []byte(spaceExceededText))
	if err != nil {
		return err
	}
	if id == "" {
		f.problems = append(f.problems, fmt.Sprintf("the start request was answered %s: %s", answer.status, clip(answer.body)))
	} else {
		run, err := h.awaitFinal(ctx, fanOutNamespace, id, sent, h.cfg.timeout)
		if err != nil {
			return err
		}
		f.took = time.Since(sent)
		f.phase = string(run.Status.Phase)
		if run.Status.Error != nil {
			f.reason, f.message = run.Status.Error.Reason, run.Status.Error.Message
		}
		// The children are waited for only once their parent ended: they are all there.
		ended := run.Status.Phase.IsFinal()
		if f.children, f.unfinished, err = h.awaitChildren(ctx, fanOutNamespace, id, ended); err != nil {
			return err
		}
		if !ended {
			f.problems = append(f.problems, fmt.Sprintf("the run had not ended %s after its start (phase %s, %d child runs so far): raise -timeout to see its end",
				fmtDur(f.took), f.phase, f.children))
		}
	}
	if st, err := os.Stat(filepath.Join(h.dir, "etcd", "member", "snap", "db")); err == nil {
		f.etcdBytes = st.Size()
	}
	if f.peakRSS, err = testcluster.PeakRSS(m.PID()); err != nil {
		return fmt.Errorf("read the manager's peak RSS: %w", err)
	}
	m.stop()
	n, err := countInFile(m.LogFile, 0, spaceExceededText)
	if err != nil {
		return err
	}
	f.spaceExceeded += n
	for i, path := range logs {
		n, err := countInFile(path, offsets[i], spaceExceededText)
		if err != nil {
			return err
		}
		f.spaceExceeded += n
	}
	f.problems = append(f.problems, f.judge(limit)...)
	h.logf("fan-out: fan_out over %d names (a %d-byte request) answered %s; the run was %s %s after %s: %s; %d child runs (%d unfinished), cap %d; %d database space exceeded, etcd's database %.0f MiB; manager peak RSS %.0f MiB of a %.0f MiB limit",
		f.names, f.requestBytes, f.answer, f.phase, f.reason, fmtDur(f.took), f.message, f.children, f.unfinished, f.cap,
		f.spaceExceeded, mib(f.etcdBytes), mib(f.peakRSS), mib(limit))
	for _, p := range f.problems {
		h.logf("fan-out: %s", p)
	}
	return nil
}

// judge lists the expectations the fan-out did not meet, RSS aside.
func (f *fanOutFigures) judge(limit int64) []string {
	var out []string
	if f.answer == "" || f.phase == "" || !workflowsv1alpha1.RunPhase(f.phase).IsFinal() {
		return out // the start request's problem, or the run's not ending, is recorded
	}
	want := min(f.names, f.cap)
	switch {
	case f.names > f.cap && (f.phase != string(workflowsv1alpha1.PhaseFailed) || f.reason != engine.ReasonTooManyChildren):
		out = append(out, fmt.Sprintf("the run ended %s %s, not Failed with %s", f.phase, f.reason, engine.ReasonTooManyChildren))
	case f.names <= f.cap && f.phase != string(workflowsv1alpha1.PhaseSucceeded):
		out = append(out, fmt.Sprintf("the run ended %s %s, not Succeeded (its names are within the cap)", f.phase, f.reason))
	}
	if f.children != want {
		out = append(out, fmt.Sprintf("%d child runs exist, not %d", f.children, want))
	}
	if f.unfinished > 0 && f.phase != "" && workflowsv1alpha1.RunPhase(f.phase).IsFinal() {
		out = append(out, fmt.Sprintf("%d child runs did not end", f.unfinished))
	}
	if f.spaceExceeded > 0 {
		out = append(out, fmt.Sprintf("%q met %d times", spaceExceededText, f.spaceExceeded))
	}
	if f.peakRSS >= limit {
		out = append(out, fmt.Sprintf("the manager's peak RSS %.0f MiB is over its %.0f MiB limit", mib(f.peakRSS), mib(limit)))
	}
	return out
}

// fanOutRequest is the body of a start request of fan_out over n names, "n-0" to "n-<n-1>".
func fanOutRequest(n int) ([]byte, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n-%d", i)
	}
	body, err := json.Marshal(map[string]any{
		"workflow_name": workflows.FanOut.Name(), "input": workflows.FanOutInput{Names: names}, "namespace": fanOutNamespace,
	})
	if err != nil {
		return nil, fmt.Errorf("encode the fan_out request: %w", err)
	}
	return body, nil
}

// restAnswer is an answer of the REST API.
type restAnswer struct {
	status string
	body   []byte
}

// postRun sends a start request with key and returns the new run's id, empty unless it was
// answered 201; err is for a request that could not be made.
func postRun(ctx context.Context, url, key string, body []byte) (string, restAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", restAnswer{}, fmt.Errorf("build a start request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(restapi.APIKeyHeader, key)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return "", restAnswer{status: "error", body: []byte(err.Error())}, nil
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	a := restAnswer{status: fmt.Sprint(resp.StatusCode), body: data}
	if err != nil || resp.StatusCode != http.StatusCreated {
		return "", a, nil
	}
	var run struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &run); err != nil || run.ID == "" {
		return "", restAnswer{status: a.status + " without a run id", body: data}, nil
	}
	return run.ID, a, nil
}

// awaitFinal polls run ns/name until it is final, or timeout after start, and returns it as it
// was last read.
func (h *harness) awaitFinal(ctx context.Context, ns, name string, start time.Time, timeout time.Duration) (*workflowsv1alpha1.WorkflowRun, error) {
	deadline := start.Add(timeout)
	for {
		run := &workflowsv1alpha1.WorkflowRun{}
		if err := h.client.Get(ctx, keyOf(ns, name), run); err != nil {
			return nil, fmt.Errorf("read run %s: %w", name, err)
		}
		if run.Status.Phase.IsFinal() || time.Now().After(deadline) {
			return run, nil
		}
		if err := testcluster.Sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// awaitChildren polls the child runs of ns/parent until each is final, for at most
// cfg.timeout (looks once unless wait), and returns how many exist and how many of them are not
// final.
func (h *harness) awaitChildren(ctx context.Context, ns, parent string, wait bool) (children, unfinished int, err error) {
	deadline := time.Now().Add(h.cfg.timeout)
	for {
		var list workflowsv1alpha1.WorkflowRunList
		if err := h.client.List(ctx, &list, client.InNamespace(ns),
			client.MatchingLabels{workflowsv1alpha1.LabelParentRun: workflowsv1alpha1.LabelValue(parent)}); err != nil {
			return 0, 0, fmt.Errorf("list the children of %s: %w", parent, err)
		}
		unfinished = 0
		for _, r := range list.Items {
			if !r.Status.Phase.IsFinal() {
				unfinished++
			}
		}
		if !wait || unfinished == 0 || time.Now().After(deadline) {
			return len(list.Items), unfinished, nil
		}
		if err := testcluster.Sleep(ctx, 2*time.Second); err != nil {
			return 0, 0, err
		}
	}
}

// countInFile counts needle in the file at path from offset on; a missing file counts none.
func countInFile(path string, offset int64, needle string) (int, error) {
	if path == "" {
		return 0, nil
	}
	file, err := os.Open(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = file.Close() }()
	if _, err := file.Seek(offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek in %s: %w", path, err)
	}
	data, err := io.ReadAll(file)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return bytes.Count(data, []byte(needle)), nil
}

// clip shortens an answer's body for a message.
func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
