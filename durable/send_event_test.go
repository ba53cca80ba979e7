package durable_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/internal/hosttest"
)

// sendHost is a Host that keeps the events a run sends; err, when set, is what SendEvent
// answers instead. Nothing else is available.
type sendHost struct {
	hosttest.Unavailable
	mu   sync.Mutex
	sent []string // "step type/correlation payload"
	err  error
}

func (h *sendHost) SendEvent(_ context.Context, step string, ev engine.OutgoingEvent) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return "", h.err
	}
	h.sent = append(h.sent, step+" "+ev.Type+"/"+ev.CorrelationID+" "+string(ev.Payload))
	return "event-" + step, nil
}

// sender sends one event, then sleeps so that the next execution replays the send.
func sender(eventType string) durable.Workflow {
	return durable.Define("sender", func(ctx *durable.Context, _ struct{}) (string, error) {
		if err := durable.SendEvent(ctx, "notify", eventType, "req-1", map[string]string{"decision": "approved"}); err != nil {
			return "", err
		}
		durable.Sleep(ctx, "after", time.Second)
		return "sent", nil
	})
}

func TestSendEventDeliversOnceAndReplays(t *testing.T) {
	host := &sendHost{}
	h := newHarness(t, sender("approval.decided"))
	h.host = host
	mustSuspend(t, h.execute(), "after", epoch.Add(time.Second))
	h.clock.Advance(time.Second)
	mustComplete(t, h.execute(), `"sent"`)

	if want := `notify approval.decided/req-1 {"decision":"approved"}`; len(host.sent) != 1 || host.sent[0] != want {
		t.Errorf("events sent: %q; want exactly [%q]", host.sent, want)
	}
	e := h.entry("notify")
	if e.Kind != engine.KindEvent || e.State != engine.StateCompleted || e.Target != "send event approval.decided/req-1" || e.Ref != "event-notify" {
		t.Errorf("entry = %+v; want a Completed Event entry with the send target and the event's ref", e)
	}
}

func TestSendEventErrors(t *testing.T) {
	t.Run("an empty type is the handler's error, nothing is sent", func(t *testing.T) {
		host := &sendHost{}
		h := newHarness(t, sender(""))
		h.host = host
		f := mustFail(t, h.execute(), engine.ReasonHandlerError)
		if !strings.Contains(f.Message, "the type must be 1 to 253 characters") || len(host.sent) != 0 {
			t.Errorf("failure %q, sent %q; want the type's rule and nothing sent", f.Message, host.sent)
		}
		assertNotRecorded(t, h, "notify")
	})
	t.Run("a refusal for good fails the run", func(t *testing.T) {
		h := newHarness(t, sender("approval.decided"))
		h.host = &sendHost{err: &engine.Failure{Reason: engine.ReasonHandlerError, Message: "the event is not valid"}}
		mustFail(t, h.execute(), engine.ReasonHandlerError)
		assertNotRecorded(t, h, "notify")
	})
	t.Run("a transient error aborts the execution, to be tried again", func(t *testing.T) {
		h := newHarness(t, sender("approval.decided"))
		h.host = &sendHost{err: errors.New("connection refused")}
		if o := h.execute(); o.Kind != engine.Aborted || !strings.Contains(o.Err.Error(), "connection refused") {
			t.Errorf("outcome: %s; want Aborted with the host's error", describe(o))
		}
	})
}

func TestSendEventWithoutAPayload(t *testing.T) {
	host := &sendHost{}
	wf := durable.Define("sender", func(ctx *durable.Context, _ struct{}) (bool, error) {
		return true, durable.SendEvent(ctx, "ping", "ping", "", nil)
	})
	h := newHarness(t, wf)
	h.host = host
	mustComplete(t, h.execute(), `true`)
	if len(host.sent) != 1 || host.sent[0] != "ping ping/ " {
		t.Errorf("events sent: %q; want one without a payload", host.sent)
	}
}
