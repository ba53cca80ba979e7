package durable_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// memPayloads is an in-memory PayloadStore that counts its calls.
type memPayloads struct {
	mu     sync.Mutex
	data   map[string]json.RawMessage
	stores int
	loads  map[string]int
	// failLoad, when set, is the error every Load returns.
	failLoad error
}

func newMemPayloads() *memPayloads {
	return &memPayloads{data: map[string]json.RawMessage{}, loads: map[string]int{}}
}

func (p *memPayloads) Store(_ context.Context, step string, attempt int, result json.RawMessage) (engine.PayloadRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stores++
	name := fmt.Sprintf("%s-a%d", step, attempt)
	p.data[name] = append(json.RawMessage(nil), result...)
	sum := sha256.Sum256(result)
	return engine.PayloadRef{Name: name, Parts: 1, Bytes: len(result), SHA256: hex.EncodeToString(sum[:])}, nil
}

func (p *memPayloads) Load(_ context.Context, ref engine.PayloadRef) (json.RawMessage, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loads[ref.Name]++
	if p.failLoad != nil {
		return nil, p.failLoad
	}
	data, ok := p.data[ref.Name]
	if !ok {
		return nil, &engine.Failure{Reason: "PayloadMissing", Message: "no payload " + ref.Name}
	}
	return data, nil
}

// blobsWorkflow records a small and a large result, then sleeps, then returns both lengths.
func blobsWorkflow(large int) durable.Workflow {
	return durable.Define("blobs", func(ctx *durable.Context, _ struct{}) (string, error) {
		small, err := durable.Step(ctx, "small", func(context.Context) (string, error) { return "tiny", nil })
		if err != nil {
			return "", err
		}
		big, err := durable.Step(ctx, "big", func(context.Context) (string, error) { return strings.Repeat("b", large), nil })
		if err != nil {
			return "", err
		}
		durable.Sleep(ctx, "rest", time.Minute)
		return fmt.Sprintf("%d+%d", len(small), len(big)), nil
	})
}

func TestLargeResultsGoToThePayloadStoreAndAreLoadedWhenReplayReachesThem(t *testing.T) {
	h := newHarness(t, blobsWorkflow(10_000))
	store := newMemPayloads()
	h.payloads = store
	h.limits.InlineResultBytes = 1000

	mustSuspend(t, h.execute(), "rest", epoch.Add(time.Minute))
	big := h.entry("big")
	if big.Result != nil || big.Payload == nil || big.Payload.Bytes != 10_002 {
		t.Fatalf("entry of the large result = %+v; want no inline result and a payload of 10002 bytes", big)
	}
	if small := h.entry("small"); string(small.Result) != `"tiny"` || small.Payload != nil {
		t.Errorf("entry of the small result = %+v; want it inline", small)
	}
	if store.stores != 1 || store.loads["big-a1"] != 0 {
		t.Errorf("stores %d, loads %d; want one store and no load on the first execution", store.stores, store.loads["big-a1"])
	}
	if got := h.journal.PayloadBytes(); got != 10_002 {
		t.Errorf("journal payload bytes = %d; want 10002", got)
	}

	h.clock.Advance(time.Minute)
	mustComplete(t, h.execute(), `"4+10000"`)
	if store.loads["big-a1"] != 1 || store.stores != 1 {
		t.Errorf("replay loaded the payload %d times and stored %d; want 1 load, no new store", store.loads["big-a1"], store.stores)
	}
}

func TestPayloadLoadErrorsAbortOrFail(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want engine.OutcomeKind
	}{
		{name: "a transient error aborts the execution", err: errors.New("connection reset"), want: engine.Aborted},
		{name: "a Failure fails the run", err: &engine.Failure{Reason: "PayloadMissing", Message: "gone"}, want: engine.Failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, blobsWorkflow(5000))
			store := newMemPayloads()
			h.payloads = store
			h.limits.InlineResultBytes = 1000
			if out := h.execute(); out.Kind != engine.Suspended {
				t.Fatalf("outcome: %s", describe(out))
			}
			store.failLoad = tt.err
			h.clock.Advance(time.Minute)
			if out := h.execute(); out.Kind != tt.want {
				t.Fatalf("outcome: %s; want %s", describe(out), tt.want)
			}
		})
	}
}

func TestPayloadsCountAgainstMaxRunBytes(t *testing.T) {
	h := newHarness(t, blobsWorkflow(5000))
	h.payloads = newMemPayloads()
	h.limits.InlineResultBytes = 1000
	h.limits.MaxRunBytes = 4000
	f := mustFail(t, h.execute(), engine.ReasonJournalTooLarge)
	if !strings.Contains(f.Message, `"big"`) || !strings.Contains(f.Message, "limit of 4000") {
		t.Errorf("failure = %q; want it to name the step and the limit", f.Message)
	}
}

func TestInputCountsAgainstMaxRunBytes(t *testing.T) {
	h := newHarness(t, blobsWorkflow(10))
	h.limits.MaxRunBytes = 200
	h.input = json.RawMessage(`{` + strings.Repeat(" ", 300) + `}`)
	mustFail(t, h.execute(), engine.ReasonJournalTooLarge)
}

func TestLongErrorsAreCutInTheJournalAndOnReplay(t *testing.T) {
	long := strings.Repeat("é", engine.MaxErrorBytes) // twice the limit in bytes
	var first, replayed string
	wf := durable.Define("loud", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, err := durable.Step(ctx, "fail", func(context.Context) (int, error) {
			return 0, durable.NonRetryable(errors.New(long))
		})
		var stepErr *durable.StepError
		if errors.As(err, &stepErr) {
			if first == "" {
				first = stepErr.Message
			} else {
				replayed = stepErr.Message
			}
		}
		durable.Sleep(ctx, "after", time.Minute)
		return "handled", nil
	})
	h := newHarness(t, wf)
	mustSuspend(t, h.execute(), "after", epoch.Add(time.Minute))
	h.clock.Advance(time.Minute)
	e := h.entry("fail")
	if len(e.Error) > engine.MaxErrorBytes || !utf8.ValidString(e.Error) || !strings.Contains(e.Error, "cut from") {
		t.Errorf("recorded error: %d bytes, valid UTF-8 %v; want at most %d bytes with a note", len(e.Error), utf8.ValidString(e.Error), engine.MaxErrorBytes)
	}
	mustComplete(t, h.execute(), `"handled"`)
	if first != e.Error || replayed != e.Error {
		t.Errorf("the handler saw a message of %d bytes first and %d on replay; want the recorded %d both times", len(first), len(replayed), len(e.Error))
	}
}
