package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

func assertBytesAccurate(t *testing.T, j *engine.Journal) {
	t.Helper()
	b, err := json.Marshal(j.Entries())
	if err != nil {
		t.Fatalf("encode the journal: %v", err)
	}
	if j.Bytes() != len(b) {
		t.Errorf("Bytes() = %d; the journal encodes to %d bytes: %s", j.Bytes(), len(b), b)
	}
}

func TestJournalBytesIsTheJSONSizeOfItsEntries(t *testing.T) {
	step := func(name string, state engine.State, result string) engine.Entry {
		e := engine.Entry{Name: name, Kind: engine.KindStep, State: state, Attempts: 1, StartedAt: epoch}
		if result != "" {
			e.Result = json.RawMessage(result)
		}
		return e
	}
	tests := []struct {
		name      string
		entries   []engine.Entry
		wantNames []string
	}{
		{name: "nil", entries: nil},
		{name: "empty", entries: []engine.Entry{}},
		{name: "one entry", entries: []engine.Entry{step("a", engine.StateCompleted, `1`)}, wantNames: []string{"a"}},
		{
			name: "several kinds",
			entries: []engine.Entry{
				step("a", engine.StateCompleted, `{"id":"x"}`),
				{Name: "nap", Kind: engine.KindSleep, State: engine.StateSleeping, StartedAt: epoch, WakeAt: epoch.Add(time.Hour)},
				{Name: "ev", Kind: engine.KindEvent, State: engine.StateWaiting, Target: "event push/1"},
				step("b", engine.StateRetrying, ""),
			},
			wantNames: []string{"a", "nap", "ev", "b"},
		},
		{
			name: "replacements keep the first position",
			entries: []engine.Entry{
				step("a", engine.StateRetrying, ""),
				step("b", engine.StateCompleted, `"short"`),
				{Name: "a", Kind: engine.KindStep, State: engine.StateRetrying, Attempts: 2, Error: "boom, again"},
				step("c", engine.StateCompleted, `[1,2,3]`),
				step("b", engine.StateCompleted, `"a much longer result than before"`),
				step("a", engine.StateCompleted, `true`),
				step("c", engine.StateFailed, ""),
			},
			wantNames: []string{"a", "b", "c"},
		},
		{
			name: "strings JSON escapes",
			entries: []engine.Entry{
				{Name: "<html> & \"quotes\"", Kind: engine.KindStep, State: engine.StateFailed, Error: "line\nbreak\tand ünïcödé \u2028"},
				step("r", engine.StateCompleted, `"<b>&amp;</b>"`),
			},
			wantNames: []string{"<html> & \"quotes\"", "r"},
		},
		{
			name:      "result with insignificant whitespace",
			entries:   []engine.Entry{step("spaced", engine.StateCompleted, "{ \"a\" : [ 1 , 2 ] }")},
			wantNames: []string{"spaced"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := engine.NewJournal(tt.entries)
			assertBytesAccurate(t, j)
			if got := names(j.Entries()); !slices.Equal(got, tt.wantNames) {
				t.Errorf("names = %v; want %v", got, tt.wantNames)
			}
			if j.Len() != len(tt.wantNames) {
				t.Errorf("Len() = %d; want %d", j.Len(), len(tt.wantNames))
			}
			// Lookup returns the last entry put under a name.
			last := map[string]engine.Entry{}
			for _, e := range tt.entries {
				last[e.Name] = e
			}
			for name, want := range last {
				if got, ok := j.Lookup(name); !ok || got.State != want.State || got.Error != want.Error || string(got.Result) != string(want.Result) {
					t.Errorf("Lookup(%q) = %+v, %v; want the last entry put, %+v", name, got, ok, want)
				}
			}
		})
	}
	if _, ok := engine.NewJournal(nil).Lookup("missing"); ok {
		t.Error("Lookup found an entry in an empty journal")
	}
}

func TestJournalBytesStaysAccurateThroughAnExecution(t *testing.T) {
	wf := durable.Define("busy", func(ctx *durable.Context, _ struct{}) (string, error) {
		_, _ = durable.Step(ctx, "flaky", func(ctx context.Context) (string, error) {
			if durable.StepAttempt(ctx) < 3 {
				return "", errors.New("a long and winding error message that is replaced later")
			}
			return "ok", nil
		})
		durable.Sleep(ctx, "nap", time.Minute)
		durable.Sleep(ctx, "blink", 0)
		return durable.Step(ctx, "last", func(context.Context) (string, error) { return "<done & dusted>", nil })
	})
	h := newHarness(t, wf)
	out := h.execute()
	for i := 0; out.Kind == engine.Suspended && i < 10; i++ {
		assertBytesAccurate(t, h.journal)
		h.clock.Set(out.WakeAt)
		out = h.execute()
	}
	mustComplete(t, out, `"<done & dusted>"`)
	assertBytesAccurate(t, h.journal) // the recorder checked it at every write too
	if got := names(h.journal.Entries()); !slices.Equal(got, []string{"flaky", "nap", "blink", "last"}) {
		t.Errorf("journal = %v", got)
	}
}
