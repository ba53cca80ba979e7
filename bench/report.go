package main

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// results are the benchmark's figures; a zero figure was not measured (a figure failed).
type results struct {
	cfg       config
	machine   string
	limits    limits
	engine    engineFigures
	python    pythonFigures
	blobs     blobsFigure
	webhooks  webhookFigures
	starts    startFigures
	schedules scheduleFigures
	memory    memoryFigures
	sharding  shardFigures
	tracing   tracingFigures
	flood     floodFigures
	openFlood openFloodFigures
	fanOut    fanOutFigures
	cpu       []cpuUse
}

// row is one line of the table.
type row struct {
	figure, measured, limit, ratio, target, met string
}

// Targets of the issue, as ratios, times, counts and sizes.
const (
	targetSequential = 0.85
	targetReplay     = 1.3
	targetLongReplay = 1.5
	targetParallel   = 0.9
	targetManagerCPU = 1.0
	// The manager's RSS per 1000 runs with 64 KiB inputs, finished and sleeping (issue #25).
	targetFinishedPer1k = 4 << 20
	targetSleepingPer1k = 6 << 20
	targetSleepQueries  = 6.0
	targetBatched       = 1.0
	targetFiles         = 0.8
	targetPython        = 0.8
	targetPyReplay      = 1.3
	targetColdReplay    = time.Second
	targetKeptRSS       = 20 << 20
	targetWebhooks      = 0.7
	targetWebhookP99    = 50 * time.Millisecond
	// targetPacedToCreates bounds the paced deliveries' p99 by that of raw creates paced at the
	// same rate in the same run.
	targetPacedToCreates = 1.2
	targetEagerP99       = 100 * time.Millisecond
	// targetSchedules bounds the last of the schedules' starts by the raw creates' time, and
	// targetTickRequests the API requests of one tick, its run's included.
	targetSchedules    = 1.5
	targetTickRequests = 3.0
	targetLateness     = 200 * time.Millisecond
)

// rows builds the table's lines: the targets first, in its order, then the figures kept
// from earlier rounds.
func (r *results) rows() []row {
	c, l, e := r.cfg, r.limits, r.engine
	rows := []row{
		ratioRow(fmt.Sprintf("sequential %d-step run of no-op steps, steps/s", c.seqSteps), e.seqStepsPerSec, "steps/s", l.seqUpdates,
			"sequential status updates/s of one object (one small field changes)", targetSequential),
		perStepRow(c.seqSteps, e.longPerStep, c.shortSteps, e.shortPerStep, targetReplay),
		perStepRow(c.hugeSteps, e.hugePerStep, c.shortSteps, e.shortPerStep, targetLongReplay),
		r.blobsRow(),
		ratioRow(fmt.Sprintf("completed steps/s, %d runs × %d steps in parallel (%d reconcilers)", c.parallelRuns, c.parallelSteps, c.parallelism),
			e.parallelStepsPerSec, "steps/s", l.parallelUpdates, fmt.Sprintf("parallel status updates/s, %d writers", c.parallelism), targetParallel),
		r.managerCPURow(),
		r.memoryRow("finished", r.memory.finished, targetFinishedPer1k),
		r.memoryRow("sleeping", r.memory.sleeping, targetSleepingPer1k),
		r.sleepBurstRow(),
		r.batchedRow(),
		ratioRow(fmt.Sprintf("sequential %d-step run of no-op steps as a Starlark workflow file, steps/s", c.fileSteps), e.fileStepsPerSec, "steps/s", e.goFileStepsPerSec,
			"steps/s of the same workflow in Go, same manager", targetFiles),
	}
	rows = append(rows, r.pythonRows()...)
	rows = append(rows, r.webhookRows()...)
	rows = append(rows, r.floodRow(), r.openFloodRow(), r.fanOutRow())
	rows = append(rows, r.startRow(true), r.startRow(false), r.scheduleRow())
	rows = append(rows, latenessRow(fmt.Sprintf("lateness of %d sleeping runs created at %.0f/s (half of what the parallel figure sustains)", c.sleepRuns, e.timers.pacedRate), e.timers.paced))
	rows = append(rows, r.shardingRows()...)
	rows = append(rows, r.tracingRows()...)
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
	rw := row{figure: figure, limit: fmt.Sprintf("%.0f %s", limit, limitText), target: fmt.Sprintf("≥ %g of the limit", target)}
	if got == 0 || limit == 0 {
		rw.measured, rw.ratio, rw.met = "not measured", "—", "no"
		return rw
	}
	ratio := got / limit
	rw.measured, rw.ratio, rw.met = fmt.Sprintf("%.0f %s", got, unit), fmt.Sprintf("%.2f", ratio), yesNo(ratio >= target)
	return rw
}

// perStepRow compares the time per step of a run of n steps with that of a run of short steps.
func perStepRow(n int, perStep time.Duration, short int, shortPerStep time.Duration, target float64) row {
	rw := row{
		figure: fmt.Sprintf("per-step time of a %d-step run", n),
		limit:  fmt.Sprintf("per-step time of a %d-step run: %s", short, fmtDur(shortPerStep)),
		target: fmt.Sprintf("≤ %.1f×", target),
	}
	if perStep == 0 || shortPerStep == 0 {
		rw.measured, rw.ratio, rw.met = "not measured", "—", "no"
		return rw
	}
	ratio := float64(perStep) / float64(shortPerStep)
	rw.measured, rw.ratio, rw.met = fmtDur(perStep), fmt.Sprintf("%.2f×", ratio), yesNo(ratio <= target)
	return rw
}

// blobsRow reports the run that records large results and is replayed after a restart.
func (r *results) blobsRow() row {
	c, f := r.cfg, r.blobs
	rw := row{
		figure: fmt.Sprintf("a run recording %d MiB of step results (%d × %d KiB, --max-run-bytes raised), replayed after a manager restart",
			c.blobSteps*c.blobBytes>>20, c.blobSteps, c.blobBytes>>10),
		limit: "—", ratio: "—",
		target: fmt.Sprintf("Succeeded, no object over %d MiB, manager RSS under %d MiB", maxObjectBytes>>20, maxManagerRSS>>20),
	}
	if f.objects == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	outcome := "Succeeded"
	if !f.succeeded {
		outcome = "did NOT succeed"
	}
	rw.measured = fmt.Sprintf("%s after %s, %d MiB recorded; largest of %d objects %d KiB (%s); manager peak RSS %.0f MiB recording, %.0f MiB replaying",
		outcome, fmtDur(f.took), f.recorded>>20, f.objects, f.largest>>10, f.largestName, mib(f.rss[0]), mib(f.rss[1]))
	rw.met = yesNo(f.succeeded && f.largest < maxObjectBytes && max(f.rss[0], f.rss[1]) < maxManagerRSS)
	return rw
}

// managerCPURow compares the manager's CPU per step in the parallel figure with what one raw
// update costs the processes besides the API server in the raw parallel limit measured right
// after it: the raw client's CPU per update plus the manager's own per raw update (its watch
// decodes every raw write, as it does the engine's).
func (r *results) managerCPURow() row {
	rw := row{figure: "manager CPU per step, parallel figure", limit: "—", ratio: "—", target: fmt.Sprintf("≤ %g×", targetManagerCPU)}
	engine, okE := r.cpuOf("parallel")
	raw, okR := r.cpuOf("raw-parallel")
	if !okE || !okR || raw.bench == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	ratio := float64(engine.manager) / float64(raw.bench+raw.manager)
	rw.measured = fmtDur(engine.manager)
	rw.limit = fmt.Sprintf("a raw parallel update's CPU: the raw client's %s + the manager's %s = %s", fmtDur(raw.bench), fmtDur(raw.manager), fmtDur(raw.bench+raw.manager))
	rw.ratio, rw.met = fmt.Sprintf("%.2f×", ratio), yesNo(ratio <= targetManagerCPU)
	return rw
}

// sleepBurstRow reports the API requests per run and the lateness of runs that sleep 2 s,
// created at once.
func (r *results) sleepBurstRow() row {
	c, t := r.cfg, r.engine.timers
	rw := latenessRow(fmt.Sprintf("%d runs each sleeping %s, created at once: API requests per run (which), lateness", c.sleepRuns, c.sleepFor), t.burst)
	rw.target = fmt.Sprintf("≤ %.0f requests; p99 ≤ %s", targetSleepQueries, fmtDur(targetLateness))
	use, ok := r.cpuOf("sleep-burst")
	if !ok || len(t.burst) == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	perRun, which := runRequests(use.perStep)
	rw.measured = fmt.Sprintf("%.2f requests (%s); %s (starting all of them took %s)", perRun, which, rw.measured, fmtDur(t.burstStart))
	rw.met = yesNo(rw.met == "yes" && perRun <= targetSleepQueries)
	return rw
}

// runRequests sums the requests per run made for the runs themselves: reads and writes of runs,
// their segments and payloads, and their Events; not the benchmark's polling (lists) nor
// what clients do once in a while (discovery, leases).
func runRequests(perStep map[string]float64) (float64, string) {
	return requestsOn(perStep, "workflowruns", "workflowrunsegments", "workflowrunpayloads", "events")
}

// tickRequests is runRequests for schedule ticks: the schedules' reads and writes besides
// their runs'.
func tickRequests(perStep map[string]float64) (float64, string) {
	return requestsOn(perStep, "workflowschedules", "workflowruns", "workflowrunsegments", "workflowrunpayloads", "events")
}

// requestsOn sums the requests of perStep on resources (a subresource counts as its
// resource), leaving out lists, watches and requests rarer than one per 200 steps.
func requestsOn(perStep map[string]float64, resources ...string) (float64, string) {
	own := map[string]float64{}
	total := 0.0
	for k, n := range perStep {
		verb, resource, _ := strings.Cut(k, " ")
		if verb == "LIST" || verb == "WATCH" || n < 0.005 {
			continue
		}
		if slices.Contains(resources, strings.TrimSuffix(resource, "/status")) {
			own[k] = n
			total += n
		}
	}
	return total, describeRequests(own)
}

// batchedRow compares a run of batched no-op steps with Temporal's local activities.
func (r *results) batchedRow() row {
	n, e := r.cfg.batchedSteps, r.engine
	rw := row{figure: fmt.Sprintf("one run of %d sequential batched no-op steps, steps/s", n), target: fmt.Sprintf("≥ %.0f× the peer", targetBatched)}
	rw.limit = fmt.Sprintf("Temporal's %d sequential no-op local activities in one workflow, same machine, same run of the benchmark", n)
	if e.temporal.stepsPerSec > 0 {
		rw.limit = fmt.Sprintf("%.0f steps/s: %s", e.temporal.stepsPerSec, rw.limit)
	} else if e.temporal.note != "" {
		rw.limit += " (" + e.temporal.note + ")"
	}
	if e.batchedStepsPerSec == 0 {
		rw.measured, rw.ratio, rw.met = "not measured", "—", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("%.0f steps/s", e.batchedStepsPerSec)
	if e.temporal.stepsPerSec == 0 {
		rw.ratio, rw.met = "—", "no"
		return rw
	}
	ratio := e.batchedStepsPerSec / e.temporal.stepsPerSec
	rw.ratio, rw.met = fmt.Sprintf("%.2f×", ratio), yesNo(ratio >= targetBatched)
	return rw
}

// cpuOf returns the CPU use recorded for figure.
func (r *results) cpuOf(figure string) (cpuUse, bool) {
	for _, c := range r.cpu {
		if c.figure == figure {
			return c, true
		}
	}
	return cpuUse{}, false
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
		limit:  "raw creates paced at the same rate", ratio: "—",
		target: fmt.Sprintf("p99 ≤ %s and ≤ %g× the raw creates' p99", fmtDur(targetWebhookP99), targetPacedToCreates),
	}
	if len(w.pacedLatency) == 0 || len(w.pacedCreateLatency) == 0 {
		paced.measured, paced.met = "not measured", "no"
		return []row{rw, paced}
	}
	p99, raw99 := w.pacedLatency.percentile(99), w.pacedCreateLatency.percentile(99)
	paced.measured = fmt.Sprintf("p50 %s, p99 %s", fmtDur(w.pacedLatency.percentile(50)), fmtDur(p99))
	paced.limit = fmt.Sprintf("raw WorkflowRun creates paced at the same rate, same run: p50 %s, p99 %s", fmtDur(w.pacedCreateLatency.percentile(50)), fmtDur(raw99))
	ratio := float64(p99) / float64(raw99)
	paced.ratio = fmt.Sprintf("%.2f× (p99 / raw p99)", ratio)
	paced.met = yesNo(p99 <= targetWebhookP99 && ratio <= targetPacedToCreates)
	return []row{rw, paced}
}

// floodRow reports the manager's peak RSS under a flood of unauthenticated 1 MiB deliveries
// against its container's memory limit, and what became of the signed deliveries meanwhile.
func (r *results) floodRow() row {
	c, f := r.cfg, r.flood
	rw := row{
		figure: fmt.Sprintf("flood: %d unauthenticated 1 MiB deliveries from %d senders at once, signed deliveries at %.0f/s meanwhile; manager peak RSS",
			c.floodDeliveries, c.floodSenders, c.floodSignedRate),
		target: "RSS < limit; every signed delivery 202 (one run each) or 429/503 with Retry-After",
	}
	if f.peakRSS == 0 || f.limit == 0 {
		rw.measured, rw.limit, rw.ratio, rw.met = "not measured", "memory limit of config/manager/manager.yaml", "—", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("%.0f MiB in %s; unauthenticated answered %s; signed answered %s, %d lost",
		mib(f.peakRSS), fmtDur(f.took), fmtCounts(f.flood), fmtCounts(f.signed), len(f.lost))
	rw.limit = fmt.Sprintf("%.0f MiB, the manager container's memory limit", mib(f.limit))
	rw.ratio = fmt.Sprintf("%.2f", float64(f.peakRSS)/float64(f.limit))
	rw.met = yesNo(f.peakRSS < f.limit && len(f.lost) == 0 && f.signed[fmt.Sprint(http.StatusAccepted)] > 0)
	return rw
}

// openFloodRow reports the open flood: distinct unsigned 1 MiB deliveries filling their
// namespace's quota, with signed deliveries to another namespace's slug meanwhile.
func (r *results) openFloodRow() row {
	c, f := r.cfg, r.openFlood
	rw := row{
		figure: fmt.Sprintf("open flood: %d distinct unsigned 1 MiB deliveries from %d senders to a provider-none slug (each a run), signed deliveries at %.0f/s to another namespace's slug meanwhile; etcd quota 2 GiB",
			c.floodDeliveries, min(c.floodSenders, openSenders), c.floodSignedRate),
		target: "RSS < limit; open deliveries 202 until the namespace's quota, then 429; none meets database space exceeded; every signed delivery 202 or 429/503 with Retry-After",
	}
	if f.peakRSS == 0 || r.flood.limit == 0 {
		rw.measured, rw.limit, rw.ratio, rw.met = "not measured", "memory limit of config/manager/manager.yaml", "—", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("%.0f MiB peak RSS in %s; open answered %s, %d database space exceeded; signed answered %s, %d lost",
		mib(f.peakRSS), fmtDur(f.took), fmtCounts(f.open), f.spaceExceeded, fmtCounts(f.signed), len(f.lost))
	rw.limit = fmt.Sprintf("%.0f MiB, the manager container's memory limit", mib(r.flood.limit))
	rw.ratio = fmt.Sprintf("%.2f", float64(f.peakRSS)/float64(r.flood.limit))
	serverErrors := 0
	for status, n := range f.open {
		if status != "202" && status != "200" && status != "429" && status != "503" {
			serverErrors += n
		}
	}
	rw.met = yesNo(f.peakRSS < r.flood.limit && len(f.lost) == 0 && f.spaceExceeded == 0 && serverErrors == 0 && f.signed["202"] > 0)
	return rw
}

// fanOutRow reports the fan_out run over more names than --max-children-per-run, started
// through the REST API by a manager that executes it: its end, its children, etcd's quota and
// the manager's peak RSS against its container's memory limit.
func (r *results) fanOutRow() row {
	f := r.fanOut
	limit := cmp.Or(r.cfg.fanOutCap, engine.DefaultMaxChildren)
	rw := row{
		figure: fmt.Sprintf("fan-out: a fan_out run over %d names started through the REST API (a %.2f MiB request; the body limit is %.0f MiB), --max-children-per-run %d; etcd quota 2 GiB; manager peak RSS",
			r.cfg.fanOutNames, mib(int64(f.requestBytes)), mib(restapi.MaxBodyBytes), limit),
		target: fmt.Sprintf("RSS < limit; the run Failed with %s within the figure's timeout; %d child runs exist, each ended; none meets database space exceeded",
			engine.ReasonTooManyChildren, min(r.cfg.fanOutNames, limit)),
	}
	if f.peakRSS == 0 || r.flood.limit == 0 {
		rw.measured, rw.limit, rw.ratio, rw.met = "not measured", "memory limit of config/manager/manager.yaml", "—", "no"
		return rw
	}
	rw.measured = fmt.Sprintf("%.0f MiB peak RSS; answered %s; the run was %s %s after %s; %d child runs (%d unfinished); %d database space exceeded (etcd's database %.0f MiB); %d problems",
		mib(f.peakRSS), f.answer, f.phase, f.reason, fmtDur(f.took), f.children, f.unfinished, f.spaceExceeded, mib(f.etcdBytes), len(f.problems))
	rw.limit = fmt.Sprintf("%.0f MiB, the manager container's memory limit", mib(r.flood.limit))
	rw.ratio = fmt.Sprintf("%.2f", float64(f.peakRSS)/float64(r.flood.limit))
	rw.met = yesNo(f.peakRSS < r.flood.limit && len(f.problems) == 0 && f.spaceExceeded == 0)
	return rw
}

// startRow reports start latency with eager_start on or off.
func (r *results) startRow(eager bool) row {
	lat, resp := r.starts.off, r.starts.offResponse
	if eager {
		lat, resp = r.starts.on, r.starts.onResponse
	}
	rw := row{figure: fmt.Sprintf("start latency (POST to first step), eager_start %s", onOff(eager)), limit: "—", ratio: "—", target: "report p50 and p99", met: "—"}
	if eager {
		rw.target, rw.met = fmt.Sprintf("p99 ≤ %s", fmtDur(targetEagerP99)), "no"
	}
	if len(lat) == 0 {
		rw.measured = "not measured"
		return rw
	}
	rw.measured = fmt.Sprintf("p50 %s, p99 %s (answer: p50 %s, p99 %s)",
		fmtDur(lat.percentile(50)), fmtDur(lat.percentile(99)), fmtDur(resp.percentile(50)), fmtDur(resp.percentile(99)))
	if eager {
		rw.met = yesNo(lat.percentile(99) <= targetEagerP99)
	}
	return rw
}

// scheduleRow reports how late the last of many schedules firing on one minute started its
// run, beside how long as many raw creates take, and the API requests of a tick.
func (r *results) scheduleRow() row {
	f := r.schedules
	rw := row{
		figure: fmt.Sprintf("%d schedules firing on the same minute: lateness of the last start (its run's create), p50 in brackets; API requests per tick (which)", r.cfg.schedules),
		target: fmt.Sprintf("≤ %g× the raw creates' time; ≤ %g requests per tick", targetSchedules, targetTickRequests), met: "no", ratio: "—",
		limit: fmt.Sprintf("%d raw WorkflowRun creates, %d writers", r.cfg.schedules, r.cfg.parallelism),
	}
	use, ok := r.cpuOf("schedules")
	if len(f.lateness) == 0 || f.rawTook == 0 || !ok {
		rw.measured = "not measured"
		return rw
	}
	last := f.lateness.max()
	perTick, which := tickRequests(use.perStep)
	rw.measured = fmt.Sprintf("%s (p50 %s): %.0f starts/s; %.2f requests per tick (%s)", fmtDur(last), fmtDur(f.lateness.percentile(50)),
		float64(len(f.lateness))/last.Seconds(), perTick, which)
	rw.limit = fmt.Sprintf("%d raw WorkflowRun creates take %s: %.0f creates/s, %d writers", r.cfg.schedules, fmtDur(f.rawTook), f.rawPerSec, r.cfg.parallelism)
	ratio := last.Seconds() / f.rawTook.Seconds()
	rw.ratio = fmt.Sprintf("%.2f× (last start / raw time)", ratio)
	rw.met = yesNo(ratio <= targetSchedules && perTick <= targetTickRequests)
	return rw
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

// memoryRow reports the manager's RSS holding memoryRuns runs in one state against target
// bytes per 1000 runs.
func (r *results) memoryRow(state string, rss int64, target int64) row {
	rw := row{figure: fmt.Sprintf("manager RSS per 1000 %s runs with %d KiB inputs (%d runs)", state, r.cfg.memoryInput>>10, r.cfg.memoryRuns),
		limit: "—", ratio: "—", target: fmt.Sprintf("≤ %d MiB per 1000 runs", target>>20)}
	if rss == 0 || r.memory.baseline == 0 {
		rw.measured, rw.met = "not measured", "no"
		return rw
	}
	per := float64(rss-r.memory.baseline) / (float64(r.cfg.memoryRuns) / 1000)
	rw.measured = fmt.Sprintf("%.1f MiB per 1000 runs (%.0f MiB with them, %.0f MiB idle)", per/(1<<20), mib(rss), mib(r.memory.baseline))
	rw.met = yesNo(per <= float64(target))
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
		b.WriteString("| figure | manager | its Python workers | kube-apiserver | etcd | benchmark (raw client) | API requests per step |\n|---|---|---|---|---|---|---|\n")
		for _, c := range r.cpu {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", c.figure, fmtDur(c.manager), fmtWorkers(c.workers), fmtDur(c.apiserver), fmtDur(c.etcd), fmtDur(c.bench), c.requests)
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

// fmtWorkers prints the Python workers' CPU, or a dash when they used none (a Go figure).
func fmtWorkers(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return fmtDur(d)
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
