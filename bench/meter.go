package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// meter measures the CPU time the manager, kube-apiserver, etcd, the benchmark itself (the
// raw client) and the manager's Python workers use during a figure, and profiles the manager's
// CPU when a profile dir is set.
type meter struct {
	h     *harness
	m     *managerProc
	name  string
	pids  [4]int
	start [4]time.Duration
	// workers is the CPU time each Python worker of the manager had used at the start.
	workers map[int]time.Duration
	profile bool
	// apiProfile delivers the API server's CPU profile of the figure's first seconds.
	apiProfile <-chan error
	// requests are the API server's request counters at the start.
	requests map[string]float64
}

// controlPlanePIDs returns the process ids of kube-apiserver and etcd, whose CPU the figures
// count beside the manager's.
func (h *harness) controlPlanePIDs() (api, etcd int, err error) {
	if api, err = h.cluster.APIServerPID(); err != nil {
		return 0, 0, err
	}
	etcd, err = h.cluster.EtcdPID()
	return api, etcd, err
}

// startMeter starts measuring; an empty name measures nothing.
func (h *harness) startMeter(ctx context.Context, m *managerProc, name string) (*meter, error) {
	mt := &meter{h: h, m: m, name: name}
	if name == "" {
		return mt, nil
	}
	api, etcd, err := h.controlPlanePIDs()
	if err != nil {
		return nil, err
	}
	mt.pids = [4]int{m.PID(), api, etcd, os.Getpid()}
	if mt.requests, err = h.apiRequests(ctx); err != nil {
		return nil, err
	}
	for i, pid := range mt.pids {
		mt.start[i] = testcluster.CPUTime(pid)
	}
	if mt.workers, err = workersCPU(m.PID()); err != nil {
		return nil, err
	}
	if h.cfg.profileDir != "" {
		if err := m.startCPUProfile(ctx); err != nil {
			return nil, err
		}
		mt.profile = true
		mt.apiProfile = h.profileAPIServer(ctx, filepath.Join(h.cfg.profileDir, name+".kube-apiserver.pprof"))
	}
	return mt, nil
}

// stop records the CPU used per step over steps steps, and saves the profile.
func (mt *meter) stop(ctx context.Context, steps int) error {
	if mt.name == "" {
		return nil
	}
	var used [4]time.Duration
	for i, pid := range mt.pids {
		used[i] = (testcluster.CPUTime(pid) - mt.start[i]) / time.Duration(max(steps, 1))
	}
	workers, err := workersCPU(mt.m.PID())
	if err != nil {
		return err
	}
	var workerUse time.Duration
	for pid, cpu := range workers {
		workerUse += cpu - mt.workers[pid] // a worker started meanwhile counts from 0
	}
	after, err := mt.h.apiRequests(ctx)
	if err != nil {
		return err
	}
	perStep := requestsPerStep(mt.requests, after, steps)
	mt.h.cpu = append(mt.h.cpu, cpuUse{figure: mt.name, manager: used[0], apiserver: used[1], etcd: used[2], bench: used[3],
		workers: workerUse / time.Duration(max(steps, 1)), requests: describeRequests(perStep), perStep: perStep})
	if !mt.profile {
		return nil
	}
	if err := mt.m.stopCPUProfile(ctx, filepath.Join(mt.h.cfg.profileDir, mt.name+".pprof")); err != nil {
		return err
	}
	return <-mt.apiProfile
}

// workersCPU returns the CPU time each Python worker of manager pid used so far, by pid.
func workersCPU(manager int) (map[int]time.Duration, error) {
	pids, err := pythonWorkers(manager)
	if err != nil {
		return nil, err
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		out[pid] = testcluster.CPUTime(pid)
	}
	return out, nil
}

// apiProfileWindow is how long the API server is profiled from the start of a figure.
const apiProfileWindow = 10 * time.Second

// profileAPIServer records a CPU profile of kube-apiserver (its /debug/pprof is on by default)
// over apiProfileWindow into path, and reports the outcome on the returned channel.
func (h *harness) profileAPIServer(ctx context.Context, path string) <-chan error {
	done := make(chan error, 1)
	go func() {
		cfg := h.cluster.Config()
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			done <- fmt.Errorf("build an HTTP client for the API server: %w", err)
			return
		}
		url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimRight(cfg.Host, "/"), int(apiProfileWindow.Seconds()))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- fmt.Errorf("build the profile request: %w", err)
			return
		}
		resp, err := hc.Do(req)
		if err != nil {
			done <- fmt.Errorf("profile the API server: %w", err)
			return
		}
		defer func() { _ = resp.Body.Close() }()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("profile the API server: %s", resp.Status)
		}
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		done <- err
	}()
	return done
}

// apiRequests reads the API server's apiserver_request_total counters, summed by verb,
// resource and subresource ("UPDATE workflowruns/status").
func (h *harness) apiRequests(ctx context.Context) (map[string]float64, error) {
	cfg := h.cluster.Config()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("build an HTTP client for the API server: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("build the metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	return parseRequestTotals(string(body)), nil
}

// requestLabel matches one label of a Prometheus sample.
var requestLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// parseRequestTotals sums apiserver_request_total samples by verb, resource and subresource.
func parseRequestTotals(metrics string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		l := map[string]string{}
		for _, m := range requestLabel.FindAllStringSubmatch(labels, -1) {
			l[m[1]] = m[2]
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		out[key] += n
	}
	return out
}

// requestsPerStep is the requests made between two readings, per step, by verb and resource.
func requestsPerStep(before, after map[string]float64, steps int) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && !strings.HasSuffix(k, " ") {
			out[k] = d / float64(max(steps, 1))
		}
	}
	return out
}

// describeRequests lists requests per step, most first, leaving out the rare ones.
func describeRequests(perStep map[string]float64) string {
	keys := make([]string, 0, len(perStep))
	for k := range perStep {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return perStep[keys[i]] > perStep[keys[j]] })
	var parts []string
	for _, k := range keys {
		if perStep[k] >= 0.005 {
			parts = append(parts, fmt.Sprintf("%.2f %s", perStep[k], k))
		}
	}
	return strings.Join(parts, ", ")
}
