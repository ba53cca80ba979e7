package durable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

// logLines counts the messages of a JSON slog stream.
func logLines(t *testing.T, buf *bytes.Buffer) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for line := range strings.Lines(buf.String()) {
		var rec struct {
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		counts[rec.Msg]++
	}
	return counts
}

func TestLoggerLogsEachLineOnceAcrossReplays(t *testing.T) {
	type point struct {
		execution int
		where     string
		replaying bool
	}
	var execution int
	var replaying []point
	mark := func(ctx *durable.Context, where string) {
		replaying = append(replaying, point{execution, where, durable.IsReplaying(ctx)})
	}
	wf := durable.Define("chatty", func(ctx *durable.Context, _ struct{}) (string, error) {
		log := durable.Logger(ctx).With("order", "o-1")
		mark(ctx, "start")
		log.Info("before steps")
		_, _ = durable.Step(ctx, "reserve", func(context.Context) (int, error) { return 1, nil })
		mark(ctx, "after reserve")
		log.Info("between steps")
		durable.Sleep(ctx, "nap", time.Hour)
		mark(ctx, "after nap")
		durable.Logger(ctx).Info("woke up")
		_, _ = durable.Step(ctx, "ship", func(context.Context) (int, error) { return 2, nil })
		mark(ctx, "after ship")
		log.Warn("done")
		return "ok", nil
	})
	var buf bytes.Buffer
	h := newHarness(t, wf)
	h.logger = slog.New(slog.NewJSONHandler(&buf, nil))

	execution = 1
	mustSuspend(t, h.execute(), "nap", epoch.Add(time.Hour))
	h.clock.Advance(time.Hour)
	execution = 2
	mustComplete(t, h.execute(), `"ok"`)
	execution = 3
	mustComplete(t, h.execute(), `"ok"`)

	want := map[string]int{"before steps": 1, "between steps": 1, "woke up": 1, "done": 1}
	if got := logLines(t, &buf); !equalCounts(got, want) {
		t.Errorf("log lines over three executions = %v; want each exactly once: %v\n%s", got, want, buf.String())
	}
	if !strings.Contains(buf.String(), `"order":"o-1"`) {
		t.Errorf("attributes added with With are lost:\n%s", buf.String())
	}

	wantReplaying := []point{
		{1, "start", false}, {1, "after reserve", false},
		{2, "start", true}, {2, "after reserve", true}, {2, "after nap", false}, {2, "after ship", false},
		{3, "start", true}, {3, "after reserve", true}, {3, "after nap", true}, {3, "after ship", true},
	}
	if !slices.Equal(replaying, wantReplaying) {
		t.Errorf("IsReplaying along the executions = %v; want %v", replaying, wantReplaying)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestLoggerIsSafeWithoutALogger(t *testing.T) {
	wf := durable.Define("quiet", func(ctx *durable.Context, _ struct{}) (string, error) {
		durable.Logger(ctx).Error("nobody listens")
		return "ok", nil
	})
	mustComplete(t, newHarness(t, wf).execute(), `"ok"`)
}
