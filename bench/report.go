package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// results are the benchmark's figures; a zero figure was not measured (a figure failed).
type results struct {
	cfg       config
	machine   string
	limits    limits
	engine    engineFigures
	webhooks  webhookFigures
	starts    startFigures
	schedules scheduleFigures
	memory    memoryFigures
	sharding  shardFigures
	cpu       []cpuUse
}

// row is one line of the table.
type row struct {
	figure, measured, limit, ratio, target, met string
}

// Targets of the issue, as ratios and times.
const (
	targetSequential = 0.8
	targetReplay     = 2.0
	targetParallel   = 0.7
	targetWebhooks   = 0.7
	targetWebhookP99 = 50 * time.Millisecond
	targetLateness   = 200 * time.Millisecond
)

// rows builds the table's lines.
func (r *results) rows() []row {
	c, l, e := r.cfg, r.limits, r.engine
	seqFigure := fmt.Sprintf("steps/s of one sequential %d-step run of no-op steps", c.seqSteps)
	rows := []row{
		ratioRow(seqFigure, e.seqStepsPerSec, "steps/s", l.seqUpdates,
			"sequential status updates/s of one object (one small field changes)", targetSequential),
		ratioRow(seqFigure+", against writes of the same size", e.seqStepsPerSec, "steps/s", l.seqJournal,
			fmt.Sprintf("sequential status updates/s of one object, each appending the journal entry of a no-op step (%d updates)", c.seqSteps), targetSequential),
		r.replayRow(),
		r.rawReplayRow(),
		ratioRow(fmt.Sprintf("completed steps/s, %d runs × %d steps in parallel (%d reconcilers)", c.parallelRuns, c.parallelSteps, c.parallelism),
			e.parallelStepsPerSec, "steps/s", l.parallelUpdates, fmt.Sprintf("parallel status updates/s, %d writers", c.parallelism), targetParallel),
	}
	rows = append(rows, r.webhookRows()...)
	rows = append(rows, r.startRow(true), r.startRow(false), r.scheduleRow())
	rows = append(rows, r.latenessRows()...)
	rows = append(rows,
		r.memoryRow("sleeping", r.memory.sleeping),
		r.memoryRow("finished", r.memory.finished),
	)
	rows = append(rows, r.shardingRows()...)
	if r.cfg.smoke {
		for i := range rows {
			if rows[i].met != "—" {
				rows[i].met = "not judged (smoke)"
			}
		}
	}
	return rows
}

// ratioRow is a throughput figure against its limit.
func ratioRow(figure string, got float64, unit string, limit float64, limitText string, target float64) row {
	rw := row{figure: figure, limit: fmt.Sprintf("%.0f %s", limit, limitText), target: fmt.Sprintf("≥ %.1f of the limit", target)}
	if got == 0 || limit == 0 {
		rw.measured, rw.ratio, rw.met = "not measured", "—", "no"
		return rw
	}
	ratio := got / limit
	rw.measured, rw.ratio, rw.met = fmt.Sprintf("%.0f %s", got, unit), fmt.Sprintf("%.2f", ratio), yesNo(ratio >= target)
	return rw
}

// replayRow compares the time per step of the long run with the short run's.
func (r *results) replayRow() row {
	e := r.engine
	rw := row{
		figure: fmt.Sprintf("per-step time of a %d-step run", r.cfg.longSteps),
		limit:  fmt.Sprintf("per-step time of a %d-step run: %s", r.cfg.shortSteps, fmtDur(e.shortPerStep)),
		target: fmt.Sprintf("≤ %.0f× (replay is not quadratic)", targetReplay),
	}
	if e.longPerStep == 0 || e.shortPerStep == 0 {
		rw.measured, rw.ratio, rw.met = "not measured", "—", "no"
		return rw
	}
	ratio := float64(e.longPerStep) / float64(e.shortPerStep)
	rw.measured, rw.ratio, rw.met = fmtDur(e.longPerStep), fmt.Sprintf("%.2f×", ratio), yesNo(ratio <= targetReplay)
	return rw
}

// rawReplayRow shows the API server's own ratio: journal-appending updates, long against short.
func (r *results) rawReplayRow() row {
	l := r.limits
	rw := row{
		figure: fmt.Sprintf("reference: per-update time of %d raw status updates appending one journal entry each", r.cfg.longSteps),
		limit:  fmt.Sprintf("the same for %d updates: %s", r.cfg.shortSteps, fmtDur(l.shortPerUpdate)),
		target: "— (what the API server does with the journal's size, no engine involved)", met: "—",
	}
	if l.longPerUpdate == 0 || l.shortPerUpdate == 0 {
		rw.measured, rw.ratio = "not measured", "—"
		return rw
	}
	rw.measured, rw.ratio = fmtDur(l.longPerUpdate), fmt.Sprintf("%.2f×", float64(l.longPerUpdate)/float64(l.shortPerUpdate))
	return rw
}

// webhookRows are the webhook throughput against raw creates, with the latency to 202 when the
// endpoint is saturated and when it is not.
func (r *results) webhookRows() []row {
	w := r.webhooks
	rw := ratioRow(fmt.Sprintf("signed webhook deliveries/s, %d senders sending as fast as answered; latency to 202", r.cfg.senders),
		w.perSec, "deliveries/s", r.limits.creates, fmt.Sprintf("WorkflowRun creates/s, %d writers", r.cfg.senders), targetWebhooks)
	rw.target += fmt.Sprintf(", p99 ≤ %s", fmtDur(targetWebhookP99))
	if w.perSec == 0 {
		return []row{rw}
	}
	rw.measured += fmt.Sprintf("; p50 %s, p99 %s", fmtDur(w.latency.percentile(50)), fmtDur(w.latency.percentile(99)))
	rw.limit += fmt.Sprintf("; their latency p50 %s, p99 %s", fmtDur(w.createLatency.percentile(50)), fmtDur(w.createLatency.percentile(99)))
	if w.latency.percentile(99) > targetWebhookP99 {
		rw.met = "no"
	}
	paced := row{
		figure: fmt.Sprintf("latency to 202 of deliveries sent at %.0f/s (half the raw creates/s)", w.pacedRate),
		limit:  "—", ratio: "—", target: fmt.Sprintf("p99 ≤ %s", fmtDur(targetWebhookP99)),
	}
	if len(w.pacedLatency) == 0 {
		paced.measured, paced.met = "not measured", "no"
	} else {
		paced.measured = fmt.Sprintf("p50 %s, p99 %s", fmtDur(w.pacedLatency.percentile(50)), fmtDur(w.pacedLatency.percentile(99)))
		paced.met = yesNo(w.pacedLatency.percentile(99) <= targetWebhookP99)
	}
	return []row{rw, paced}
}

// startRow reports start latency with eager_start on or off.
func (r *results) startRow(eager bool) row {
	lat, resp := r.starts.off, r.starts.offResponse
	if eager {
		lat, resp = r.starts.on, r.starts.onResponse
	}
	rw := row{figure: fmt.Sprintf("start latency (POST to first step), eager_start %s", onOff(eager)), limit: "—", ratio: "—", target: "report p50 and p99", met: "—"}
	if len(lat) == 0 {
		rw.measured = "not measured"
		return rw
	}
	rw.measured = fmt.Sprintf("p50 %s, p99 %s (answer: p50 %s, p99 %s)",
		fmtDur(lat.percentile(50)), fmtDur(lat.percentile(99)), fmtDur(resp.percentile(50)), fmtDur(resp.percentile(99)))
	return rw
}

// scheduleRow reports how late the last of many schedules firing on one minute started its
// run, beside how long as many raw creates take.
func (r *results) scheduleRow() row {
	f := r.schedules
	rw := row{
		figure: fmt.Sprintf("%d schedules firing on the same minute: lateness of the last start (its run's create), p50 in brackets", r.cfg.schedules),
		target: "report, beside the raw creates", met: "—", ratio: "—",
		limit: fmt.Sprintf("%d raw WorkflowRun creates, %d writers", r.cfg.schedules, r.cfg.parallelism),
	}
	if len(f.lateness) == 0 || f.rawTook == 0 {
		rw.measured = "not measured"
		return rw
	}
	last := f.lateness.max()
	rw.measured = fmt.Sprintf("%s (p50 %s): %.0f starts/s", fmtDur(last), fmtDur(f.lateness.percentile(50)), float64(len(f.lateness))/last.Seconds())
	rw.limit = fmt.Sprintf("%d raw WorkflowRun creates take %s: %.0f creates/s, %d writers", r.cfg.schedules, fmtDur(f.rawTook), f.rawPerSec, r.cfg.parallelism)
	rw.ratio = fmt.Sprintf("%.2f (raw time / last start)", f.rawTook.Seconds()/last.Seconds())
	return rw
}

// latenessRows report how late timers fired: runs created at once, and runs created at a
// sustainable pace.
func (r *results) latenessRows() []row {
	t := r.engine.timers
	burst := latenessRow(fmt.Sprintf("lateness of %d runs that each sleep %s, created at once", r.cfg.sleepRuns, r.cfg.sleepFor), t.burst)
	if len(t.burst) > 0 {
		burst.measured += fmt.Sprintf(" (starting all of them took %s)", fmtDur(t.burstStart))
	}
	paced := latenessRow(fmt.Sprintf("the same, the runs created at %.0f/s (half of what the parallel figure sustains)", t.pacedRate), t.paced)
	return []row{burst, paced}
}

// latenessRow reports the lateness of one set of timers.
func latenessRow(figure string, lat durations) row {
	rw := row{figure: figure, limit: "—", ratio: "—", target: fmt.Sprintf("p99 ≤ %s", fmtDur(targetLateness))}
	if len(lat) == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("p50 %s, p99 %s, max %s", fmtDur(lat.percentile(50)), fmtDur(lat.percentile(99)), fmtDur(lat.max()))
	rw.met = yesNo(lat.percentile(99) <= targetLateness)
	return rw
}

// memoryRow reports the manager's RSS holding memoryRuns runs in one state.
func (r *results) memoryRow(state string, rss int64) row {
	rw := row{figure: fmt.Sprintf("manager RSS with %d runs %s", r.cfg.memoryRuns, state), limit: "—", ratio: "—", target: "report MiB per 1000 runs", met: "—"}
	if rss == 0 || r.memory.baseline == 0 {
		rw.measured = "not measured"
		return rw
	}
	per := float64(rss-r.memory.baseline) / (1 << 20) / (float64(r.cfg.memoryRuns) / 1000)
	rw.measured = fmt.Sprintf("%.0f MiB (idle %.0f MiB): %.1f MiB per 1000 runs", mib(rss), mib(r.memory.baseline), per)
	return rw
}

// allMet reports whether every judged figure met its target.
func (r *results) allMet() bool {
	for _, rw := range r.rows() {
		if rw.met == "no" {
			return false
		}
	}
	return true
}

// markdown renders the machine, the table and the CPU split.
func (r *results) markdown() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n\n", r.machine)
	b.WriteString("| figure | measured | measured against (same run, same API server) | ratio | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, rw := range r.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", rw.figure, rw.measured, rw.limit, rw.ratio, rw.target, rw.met)
	}
	if len(r.cpu) > 0 {
		b.WriteString("\nCPU time and API requests per step (per run for the sleep figures, per update for the raw ones), by process;\n")
		b.WriteString("requests count every client of the API server, the benchmark's own polling included:\n\n")
		b.WriteString("| figure | manager | kube-apiserver | etcd | benchmark (raw client) | API requests per step |\n|---|---|---|---|---|---|\n")
		for _, c := range r.cpu {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.figure, fmtDur(c.manager), fmtDur(c.apiserver), fmtDur(c.etcd), fmtDur(c.bench), c.requests)
		}
	}
	b.WriteString(r.shardingNotes())
	return b.String()
}

// Markers around the generated part of docs/benchmarks.md.
const (
	docBegin = "<!-- bench:begin (generated by `make bench`; edit around it) -->"
	docEnd   = "<!-- bench:end -->"
)

// writeDoc replaces the generated part of the Markdown file at path with the latest results,
// or appends it when the file has no markers yet.
func (r *results) writeDoc(path string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", path, err)
	}
	block := docBegin + "\n\n" + r.markdown() + "\n" + docEnd
	doc := string(old)
	begin, end := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if begin >= 0 && end > begin {
		doc = doc[:begin] + block + doc[end+len(docEnd):]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + block + "\n"
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// describeMachine says where the figures were measured.
func describeMachine(cfg config) string {
	root, _ := testcluster.ModuleRoot()
	version := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "bin", "k8s", name+".version"))
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	mode := "full size"
	if cfg.smoke {
		mode = "smoke sizes, targets not judged"
	}
	return fmt.Sprintf("Measured %s on %s: %s, %d CPUs, %s RAM, Linux %s, %s; etcd %s (fsync %s), kube-apiserver %s; %s.",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), hostname(), cpuModel(), runtime.NumCPU(), memTotal(), kernel(),
		runtime.Version(), version("etcd"), onOff(!cfg.unsafeNoFsync), version("kube-apiserver"), mode)
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "an unnamed host"
	}
	return h
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	return procField("/proc/cpuinfo", "model name", "an unknown CPU")
}

// memTotal returns MemTotal of /proc/meminfo in GiB.
func memTotal() string {
	kb := procField("/proc/meminfo", "MemTotal", "")
	var n int64
	if _, err := fmt.Sscanf(kb, "%d kB", &n); err != nil {
		return "? GiB"
	}
	return fmt.Sprintf("%.0f GiB", float64(n)/(1<<20))
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key, def string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return def
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// fmtDur prints a duration with three significant digits.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
