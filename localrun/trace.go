package localrun

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// maxShownBytes bounds a value printed in the trace; the journal keeps it whole.
const maxShownBytes = 200

// tracer prints a run's primitives as the engine journals them, one line each; a child's
// lines are indented under its parent's.
type tracer struct {
	out    io.Writer
	indent string
	real   bool
	now    func() time.Time
	host   *host
	mu     *sync.Mutex
	// slept names the sleeps already printed, so that a sleep's completion is not printed
	// again.
	slept map[string]bool
}

// child returns the tracer of a child run: same writer, indented once more.
func (t *tracer) child() *tracer {
	return &tracer{out: t.out, indent: t.indent + "  ", real: t.real, now: t.now, mu: t.lock()}
}

// lock returns the mutex shared by a tracer and its children's.
func (t *tracer) lock() *sync.Mutex {
	if t.mu == nil {
		t.mu = &sync.Mutex{}
	}
	return t.mu
}

// line prints one line of the trace.
func (t *tracer) line(format string, args ...any) {
	if t.out == nil {
		return
	}
	mu := t.lock()
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(t.out, t.indent+format+"\n", args...)
}

// entries prints the entries the engine journalled.
func (t *tracer) entries(changed []engine.Entry) {
	for _, e := range changed {
		if s := t.describe(e); s != "" {
			t.line("%s", s)
		}
	}
}

// outcome prints how the run ended.
func (t *tracer) outcome(r *Result) {
	if r.Failure != nil {
		t.line("failed %s: %s", r.Failure.Reason, lastLine(r.Failure.Message))
		if strings.Contains(r.Failure.Message, "\n") {
			t.line("  %s", strings.ReplaceAll(r.Failure.Message, "\n", "\n"+t.indent+"  "))
		}
		return
	}
	t.line("output %s", shown(r.Output))
}

// describe is the trace line of a journalled entry, empty for a change not worth a line (a
// wait that starts, a child or turn started: their result gets the line).
func (t *tracer) describe(e engine.Entry) string {
	switch e.Kind {
	case engine.KindStep:
		return t.describeStep(e)
	case engine.KindSleep:
		return t.describeSleep(e)
	case engine.KindEvent:
		return describeEvent(e)
	case engine.KindChild:
		return t.describeChild(e)
	case engine.KindAgent:
		return describeAgent(e)
	case engine.KindVersion:
		return fmt.Sprintf("version %s → %s", e.Name, e.Result)
	}
	return fmt.Sprintf("%s %s %s", strings.ToLower(string(e.Kind)), e.Name, e.State)
}

// describeStep: a step's result, a failed attempt that will be retried, or its final failure.
func (t *tracer) describeStep(e engine.Entry) string {
	switch e.State {
	case engine.StateCompleted:
		if e.Attempts > 1 {
			return fmt.Sprintf("step %s → %s (attempt %d)", e.Name, shown(e.Result), e.Attempts)
		}
		return fmt.Sprintf("step %s → %s", e.Name, shown(e.Result))
	case engine.StateRetrying:
		return fmt.Sprintf("step %s attempt %d failed: %s (retry in %s, %s)", e.Name, e.Attempts, cut(e.Error), e.WakeAt.Sub(t.now()).Round(time.Second), t.waitWord())
	case engine.StateFailed:
		return fmt.Sprintf("step %s failed after %d attempts: %s", e.Name, e.Attempts, cut(e.Error))
	}
	return ""
}

// describeSleep prints a sleep once: when it starts (with its length), or when it completes
// without having had to wait.
func (t *tracer) describeSleep(e engine.Entry) string {
	if t.slept[e.Name] {
		return ""
	}
	if t.slept == nil {
		t.slept = map[string]bool{}
	}
	t.slept[e.Name] = true
	if e.State != engine.StateSleeping {
		return fmt.Sprintf("sleep %s 0s", e.Name)
	}
	return fmt.Sprintf("sleep %s %s (%s)", e.Name, e.WakeAt.Sub(e.StartedAt).Round(time.Millisecond), t.waitWord())
}

// waitWord says what the run does about a wait: skips it, or waits with real time.
func (t *tracer) waitWord() string {
	if t.real {
		return "waiting"
	}
	return "skipped"
}

// describeEvent: an event received, a wait timed out, or an event sent.
func describeEvent(e engine.Entry) string {
	if sent, ok := strings.CutPrefix(e.Target, "send "); ok {
		return fmt.Sprintf("send %s %s", e.Name, eventWords(sent))
	}
	switch e.State {
	case engine.StateCompleted:
		return fmt.Sprintf("wait %s %s → received %s", e.Name, eventWords(e.Target), shown(e.Result))
	case engine.StateFailed:
		return fmt.Sprintf("wait %s %s → %s", e.Name, eventWords(e.Target), e.Error)
	}
	return ""
}

// eventWords turns a target "event TYPE/CORRELATION" into "event TYPE (correlation C)".
func eventWords(target string) string {
	typ, corr, _ := strings.Cut(strings.TrimPrefix(target, "event "), "/")
	if corr == "" {
		return "event " + typ
	}
	return fmt.Sprintf("event %s (correlation %s)", typ, corr)
}

// describeChild: a child run's end (its start is printed by the host, before its lines).
func (t *tracer) describeChild(e engine.Entry) string {
	id, ok := strings.CutPrefix(e.Target, "workflow ")
	if !ok || !final(e) {
		return ""
	}
	workflow := ""
	if t.host != nil {
		workflow = t.host.workflowOf(id)
	}
	if e.State == engine.StateFailed {
		return fmt.Sprintf("child %s (%s) → Failed %s", id, workflow, cut(e.Error))
	}
	return fmt.Sprintf("child %s (%s) → Succeeded %s", id, workflow, shown(e.Result))
}

// describeAgent: an agent turn's reply or failure.
func describeAgent(e engine.Entry) string {
	if !strings.HasPrefix(e.Target, "agent turn ") || !final(e) {
		return ""
	}
	name := strings.TrimSuffix(e.Name, "/result")
	if e.State == engine.StateFailed {
		return fmt.Sprintf("agent %s → failed %s", name, cut(e.Error))
	}
	var res durable.AgentResult
	if err := json.Unmarshal(e.Result, &res); err != nil {
		return fmt.Sprintf("agent %s → %s", name, shown(e.Result))
	}
	return fmt.Sprintf("agent %s → %s", name, cut(strconv.Quote(res.Text)))
}

// final reports whether an entry completed or failed for good.
func final(e engine.Entry) bool {
	return e.State == engine.StateCompleted || e.State == engine.StateFailed
}

// shown is a JSON value as printed: compact and cut to maxShownBytes.
func shown(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	return cut(string(raw))
}

// cut bounds a printed text to maxShownBytes, on one line: of an error with a traceback, its
// last line, which says what went wrong.
func cut(s string) string {
	return textbound.Cut(lastLine(s), maxShownBytes)
}

// lastLine is s's last line that is not blank.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}
