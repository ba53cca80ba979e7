package pyworker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

// Session is one execution of one run on a worker: the manager starts the handler with Run,
// answers each turn with Results (running step functions with CallStep in between), and ends
// with End. Its methods are called from one goroutine, except CallStep, which the branches of
// a parallel group call at once.
type Session struct {
	w      *worker
	id     int64
	uid    string
	logger *slog.Logger

	handler chan *frame // turn, return, raise, fail, unknown_revision
	mu      sync.Mutex
	steps   map[stepKey]chan *frame
	gone    chan struct{} // closed when the worker is gone; err says why
	err     error
	ended   bool
}

type stepKey struct{ call, branch int }

// Message is where the handler stopped: Op is "turn" (Calls, Resumed), "return" (Output),
// "raise" (Error) or "fail" (Reason, Text).
type Message struct {
	Op      string
	Resumed bool
	Calls   []Call
	Output  json.RawMessage
	Error   *HandlerError
	Reason  string
	Text    string
}

// PID is the process id of the session's worker.
func (s *Session) PID() int { return s.w.pid }

// Run starts (or, on a hit, resumes) the handler of run at revision digest and returns where it
// stopped. load is the revision's source, sent first when the worker does not have it; a
// revision that does not load (any more: a module it imports was removed) is a *LoadError.
func (s *Session) Run(ctx context.Context, load LoadRequest, run RunInfo, input json.RawMessage, end JournalEnd) (*Message, error) {
	if !s.w.hasRevision(load.Digest) {
		if err := s.load(ctx, load); err != nil {
			return nil, err
		}
	}
	f := &frame{Op: "run", S: s.id, Digest: load.Digest, Run: &run, Input: input, End: &end}
	if len(f.Input) == 0 {
		f.Input = json.RawMessage("null")
	}
	m, err := s.exchange(ctx, f)
	if err == nil && m.Op == "unknown_revision" {
		if err := s.load(ctx, load); err != nil {
			return nil, err
		}
		m, err = s.exchange(ctx, f)
	}
	if err != nil {
		return nil, err
	}
	if m.Op == "unknown_revision" {
		return nil, fmt.Errorf("the Python worker %d does not keep revision %s after loading it", s.w.pid, load.Revision)
	}
	result := "miss"
	if m.Resumed {
		result = "hit"
	}
	s.w.pool.metrics.cache.WithLabelValues(result).Inc()
	return m, nil
}

// load imports the revision for the session; a revision that does not load is a *LoadError.
// The top level runs on the session's turn clock, as handler code does: a worker that dies
// while it imports the run's revision, or that runs past the handler deadline, is blamed on the
// run (a *WorkerExitedError), so that a revision whose import always takes its worker down
// ends with ExecutionLimitExceeded rather than forever.
func (s *Session) load(ctx context.Context, req LoadRequest) error {
	s.w.startTurn(s.id)
	defer s.w.endTurn(s.id)
	_, le, err := s.w.load(ctx, req, 0)
	if err != nil {
		return err
	}
	if le != nil {
		return le
	}
	return nil
}

// Results answers the turn the handler waits in, with the run's recorded time now, and
// returns where the handler stopped next.
func (s *Session) Results(ctx context.Context, now time.Time, results []Result) (*Message, error) {
	return s.exchange(ctx, &frame{Op: "results", S: s.id, Now: &now, Results: results})
}

// exchange sends a message that resumes handler code, with the handler deadline running, and
// waits for where the handler stopped.
func (s *Session) exchange(ctx context.Context, f *frame) (*Message, error) {
	s.w.startTurn(s.id)
	if err := s.w.send(f); err != nil {
		s.w.endTurn(s.id)
		return nil, err
	}
	select {
	case m := <-s.handler:
		return messageOf(m)
	case <-s.gone:
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// messageOf reads a handler message.
func messageOf(f *frame) (*Message, error) {
	m := &Message{Op: f.Op, Resumed: f.Resumed, Calls: f.Calls, Output: f.Output, Reason: f.Reason, Text: f.Message}
	if f.Op == "raise" {
		m.Error = &HandlerError{}
		if err := jsonUnmarshal(f.Error, m.Error); err != nil {
			return nil, fmt.Errorf("read the handler's exception: %w", err)
		}
	}
	return m, nil
}

// CallStep runs a step function of the current turn (call, and branch of a parallel call, or
// -1) and returns its JSON result or how it failed. When ctx ends first (the step's timeout),
// the worker is told to cancel it; a function on a thread cannot be stopped, so its worker is
// recycled once its sessions end.
func (s *Session) CallStep(ctx context.Context, call, branch, attempt int, async bool) (json.RawMessage, *StepError, error) {
	key := stepKey{call, branch}
	ch := make(chan *frame, 1)
	s.mu.Lock()
	s.steps[key] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.steps, key)
		s.mu.Unlock()
	}()
	f := &frame{Op: "call_step", S: s.id, Call: &call, Attempt: attempt, Traceparent: traceparentOf(ctx)}
	if branch >= 0 {
		f.Branch = &branch
	}
	if err := s.w.send(f); err != nil {
		return nil, nil, err
	}
	select {
	case done := <-ch:
		if len(done.Error) > 0 {
			se := &StepError{}
			if err := jsonUnmarshal(done.Error, se); err != nil {
				return nil, nil, fmt.Errorf("read the step's error: %w", err)
			}
			return nil, se, nil
		}
		return done.Value, nil, nil
	case <-s.gone:
		return nil, nil, s.err
	case <-ctx.Done():
		cancel := &frame{Op: "cancel_step", S: s.id, Call: &call, Branch: f.Branch}
		_ = s.w.send(cancel)
		if !async {
			s.w.pool.recycle(s.w, fmt.Sprintf("a step function on a thread ran past its timeout (run uid %s)", s.uid))
		}
		return nil, nil, ctx.Err()
	}
}

// End ends the session: keep says to keep the suspended handler for the run's next
// execution, tagged with end. The session must not be used afterwards.
func (s *Session) End(keep bool, end JournalEnd) {
	s.mu.Lock()
	ended := s.ended
	s.ended = true
	s.mu.Unlock()
	if ended {
		return
	}
	select {
	case <-s.gone:
	default:
		_ = s.w.send(&frame{Op: "end", S: s.id, Keep: &keep, End: &end})
	}
	s.w.endTurn(s.id)
	s.w.mu.Lock()
	delete(s.w.sessions, s.id)
	idle := s.w.draining && len(s.w.sessions) == 0
	s.w.mu.Unlock()
	if idle {
		_ = s.w.cmd.Process.Kill()
	}
}

// deliver hands a handler message to the session.
func (s *Session) deliver(f *frame) {
	select {
	case s.handler <- f:
	default:
		s.w.pool.log.Info("python_worker_protocol_error", "pid", s.w.pid, "message", "a second handler message before the first was read", "op", f.Op)
	}
}

// traceparentOf is the W3C traceparent of ctx's span as the process's propagator writes it:
// a traced step attempt's (the manager sets the propagator when it traces), "" otherwise.
func traceparentOf(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "" // untraced: no carrier to make on every step call
	}
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	return carrier.Get("traceparent")
}

// stepDone hands a step's outcome to the CallStep that waits for it; a late one is dropped.
func (s *Session) stepDone(f *frame) {
	key := stepKey{-1, -1}
	if f.Call != nil {
		key.call = *f.Call
	}
	if f.Branch != nil {
		key.branch = *f.Branch
	}
	s.mu.Lock()
	ch := s.steps[key]
	s.mu.Unlock()
	if ch != nil {
		ch <- f
	}
}

// fail ends the session because its worker is gone.
func (s *Session) fail(err error) {
	s.err = err
	close(s.gone)
}

// log writes a ctx.log line of the handler, its message and every field cut to
// textbound.LogValue.
func (s *Session) log(f *frame) {
	if s.logger == nil {
		return
	}
	level := slog.LevelInfo
	switch f.Level {
	case "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	attrs := make([]any, 0, 2*len(f.Fields))
	for k, v := range f.Fields {
		var text string
		if json.Unmarshal(v, &text) == nil {
			attrs = append(attrs, textbound.Cut(k, textbound.LogValue), textbound.Cut(text, textbound.LogValue))
		} else {
			attrs = append(attrs, textbound.Cut(k, textbound.LogValue), textbound.JSON(v, textbound.LogValue))
		}
	}
	s.logger.Log(context.Background(), level, textbound.Cut(f.Msg, textbound.LogValue), attrs...)
}

// hasRevision reports whether w loaded the revision of digest.
func (w *worker) hasRevision(digest string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.revisions[digest]
}

func jsonUnmarshal(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("empty")
	}
	return json.Unmarshal(raw, v)
}

// counterValue reads a counter, for CacheCounts.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}
