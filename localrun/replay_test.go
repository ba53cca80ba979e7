package localrun_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/localrun"
	"github.com/centaur-dev/workflow-operator/pyworker"
)

// orderV1 is the recorded version of a workflow: two steps, a sleep, then a wait for an
// event that the recording never gets, so its journal ends in flight as a run's would.
const orderV1 = `WORKFLOW_NAME = "order"

def handler(inp, ctx):
    price = ctx.step("price", lambda: inp["qty"] * 3)
    tax = ctx.step("tax", lambda: price // 10)
    ctx.sleep("cool_off", "1h")
    paid = ctx.wait_for_event("paid", "order.paid", correlation_id = inp["id"])
    return {"total": price + tax, "paid": paid}
`

// orderInput is the recorded run's input.
const orderInput = `{"id": "o-1", "qty": 40}`

// recordOrder runs orderV1 until it waits for its event and returns the journal so far.
func recordOrder(t *testing.T) []engine.Entry {
	t.Helper()
	path := writeFlow(t, t.TempDir(), orderV1)
	res, err := localrun.RunFile(context.Background(), path, localrun.Options{Input: json.RawMessage(orderInput)}, localrun.LoadOptions{})
	var missing *localrun.MissingEventError
	if !errors.As(err, &missing) {
		t.Fatalf("recording: want the run to wait for its event, got %v", err)
	}
	if len(res.Journal) != 4 || res.Journal[3].State != engine.StateWaiting {
		t.Fatalf("recording: want 4 entries ending in a wait, got %+v", res.Journal)
	}
	return res.Journal
}

// writeFlow writes source as order.star in dir and returns its path.
func writeFlow(t *testing.T, dir, source string) string {
	t.Helper()
	path := filepath.Join(dir, "order.star")
	if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// replayFlow replays journal against source (written as a file of its own directory).
func replayFlow(t *testing.T, source string, journal []engine.Entry) *localrun.ReplayResult {
	t.Helper()
	d, w, err := localrun.LoadFile(context.Background(), writeFlow(t, t.TempDir(), source), localrun.LoadOptions{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	defer d.Close()
	res, err := localrun.Replay(context.Background(), w, journal, localrun.ReplayOptions{Input: json.RawMessage(orderInput)})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return res
}

func TestReplayAcceptsCompatibleEdits(t *testing.T) {
	journal := recordOrder(t)
	for _, tc := range []struct {
		name, source, stop string
	}{
		{"the same code", orderV1, "at event paid, waiting in the recorded run"},
		{"a changed step body and new code after the wait",
			strings.NewReplacer(`inp["qty"] * 3`, `inp["qty"] * 4 + 1`,
				`    return {"total"`, "    ctx.step(\"receipt\", lambda: \"sent\")\n    return {\"total\"").Replace(orderV1),
			"at event paid, waiting in the recorded run"},
		{"a new step guarded by get_version",
			strings.Replace(orderV1, `    tax = `, "    if ctx.get_version(\"discount\", -1, 1) == 1:\n        ctx.step(\"discount\", lambda: 5)\n    tax = ", 1),
			"at event paid, waiting in the recorded run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := replayFlow(t, tc.source, journal)
			if !res.Compatible() {
				t.Fatalf("want compatible, got divergence: %s", res.Divergence)
			}
			if res.Stop != tc.stop || res.Matched != 4 || res.Entries != 4 {
				t.Fatalf("stopped %q after %d of %d entries; want %q after 4 of 4", res.Stop, res.Matched, res.Entries, tc.stop)
			}
		})
	}
}

func TestReplayReportsTheFirstDivergence(t *testing.T) {
	journal := recordOrder(t)
	for _, tc := range []struct {
		name, source string
		index        int
		expected     localrun.Call
		got          *localrun.Call
		site         string // a substring of the call site
		end          string
	}{
		{name: "a renamed step", source: strings.Replace(orderV1, `ctx.step("tax"`, `ctx.step("vat"`, 1),
			index: 1, expected: localrun.Call{Kind: engine.KindStep, Name: "tax"}, got: &localrun.Call{Kind: engine.KindStep, Name: "vat"},
			site: "order.star:5:19 in handler"},
		{name: "reordered steps", source: strings.Replace(orderV1,
			"    price = ctx.step(\"price\", lambda: inp[\"qty\"] * 3)\n    tax = ctx.step(\"tax\", lambda: price // 10)\n",
			"    tax = ctx.step(\"tax\", lambda: 4)\n    price = ctx.step(\"price\", lambda: inp[\"qty\"] * 3)\n", 1),
			index: 0, expected: localrun.Call{Kind: engine.KindStep, Name: "price"}, got: &localrun.Call{Kind: engine.KindStep, Name: "tax"},
			site: "order.star:4:19 in handler"},
		{name: "a new primitive before recorded ones", source: strings.Replace(orderV1, `    ctx.sleep(`, "    ctx.sleep(\"settle\", \"5m\")\n    ctx.sleep(", 1),
			index: 2, expected: localrun.Call{Kind: engine.KindSleep, Name: "cool_off"}, got: &localrun.Call{Kind: engine.KindSleep, Name: "settle"},
			site: "order.star:6:14 in handler"},
		{name: "a new primitive in a helper function", source: strings.Replace(orderV1, "def handler(inp, ctx):\n    price",
			"def check(ctx):\n    ctx.step(\"check\", lambda: True)\n\ndef handler(inp, ctx):\n    check(ctx)\n    price", 1),
			index: 0, expected: localrun.Call{Kind: engine.KindStep, Name: "price"}, got: &localrun.Call{Kind: engine.KindStep, Name: "check"},
			site: "order.star:4:13 in check"},
		{name: "a step that became a sleep", source: strings.Replace(orderV1, `tax = ctx.step("tax", lambda: price // 10)`, `tax = 0; ctx.sleep("tax", "1s")`, 1),
			index: 1, expected: localrun.Call{Kind: engine.KindStep, Name: "tax"}, got: &localrun.Call{Kind: engine.KindSleep, Name: "tax"},
			site: "order.star:5:23"},
		{name: "recorded calls removed", source: "WORKFLOW_NAME = \"order\"\n\ndef handler(inp, ctx):\n    return ctx.step(\"price\", lambda: 1)\n",
			index: 1, expected: localrun.Call{Kind: engine.KindStep, Name: "tax"}, end: "returned"},
		{name: "the new code fails on a recorded result", source: strings.Replace(orderV1, "    tax = ", "    if price > 100:\n        fail(\"price too high\")\n    tax = ", 1),
			index: 1, expected: localrun.Call{Kind: engine.KindStep, Name: "tax"}, end: "failed: HandlerError: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := replayFlow(t, tc.source, journal)
			d := res.Divergence
			if d == nil {
				t.Fatalf("want a divergence, got compatible (%s)", res.Stop)
			}
			t.Logf("divergence: %s", d)
			if d.Index != tc.index || d.Expected != tc.expected || res.Matched != tc.index {
				t.Fatalf("divergence at entry %d (matched %d), expected %s; want entry %d, expected %s", d.Index, res.Matched, d.Expected, tc.index, tc.expected)
			}
			if (d.Got == nil) != (tc.got == nil) || (d.Got != nil && *d.Got != *tc.got) || !strings.HasPrefix(d.End, tc.end) || (tc.end == "") != (d.End == "") {
				t.Fatalf("got %v / %q; want %v / %q", d.Got, d.End, tc.got, tc.end)
			}
			if !strings.Contains(d.Site, tc.site) || (tc.site == "" && d.Site != "") {
				t.Fatalf("site %q; want it to hold %q", d.Site, tc.site)
			}
			if !strings.Contains(d.Advice, "ctx.get_version") {
				t.Fatalf("advice %q does not name ctx.get_version", d.Advice)
			}
		})
	}
}

// greetIn is the input of the Go workflows of TestReplayOfGoCodeSuggestsGetVersion.
type greetIn struct{}

func TestReplayOfGoCodeSuggestsGetVersion(t *testing.T) {
	v1 := durable.Define("greet", func(ctx *durable.Context, _ greetIn) (string, error) {
		a, err := durable.Step(ctx, "fetch", func(context.Context) (string, error) { return "a", nil })
		if err != nil {
			return "", err
		}
		return durable.Step(ctx, "format", func(context.Context) (string, error) { return a + "!", nil })
	})
	ran := false
	v2 := durable.Define("greet", func(ctx *durable.Context, _ greetIn) (string, error) {
		a, err := durable.Step(ctx, "fetch_v2", func(context.Context) (string, error) { ran = true; return "a", nil })
		if err != nil {
			return "", err
		}
		return a, nil
	})
	rec, err := localrun.Run(context.Background(), v1, localrun.Options{})
	if err != nil || !rec.Succeeded() {
		t.Fatalf("recording: %v %+v", err, rec)
	}
	same, err := localrun.Replay(context.Background(), v1, rec.Journal, localrun.ReplayOptions{GoSource: true})
	if err != nil || !same.Compatible() || same.Stop != "after the last entry the handler returned" {
		t.Fatalf("the same code: %v %+v", err, same)
	}
	res, err := localrun.Replay(context.Background(), v2, rec.Journal, localrun.ReplayOptions{GoSource: true})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Divergence
	if d == nil || d.Got == nil || d.Got.Name != "fetch_v2" || !strings.Contains(d.Site, "replay_test.go:") || !strings.Contains(d.Advice, "durable.GetVersion") {
		t.Fatalf("want a divergence at fetch_v2 in replay_test.go with GetVersion advice, got %+v", d)
	}
	if ran {
		t.Fatal("the replay ran a step function")
	}
}

// pyOrderV1 is a Python workflow: two steps, then an hour's sleep.
const pyOrderV1 = `from api.workflow_engine import WorkflowContext

WORKFLOW_NAME = "py_order"


async def handler(inp, ctx: WorkflowContext):
    price = await ctx.step("price", lambda: inp["qty"] * 3)
    tax = await ctx.step("tax", lambda: price // 10)
    await ctx.sleep("cool_off", "1h")
    return {"total": price + tax}
`

func TestReplayOfAPythonFile(t *testing.T) {
	if _, err := exec.LookPath(pyworker.DefaultPython); err != nil {
		t.Skipf("no %s: %v", pyworker.DefaultPython, err)
	}
	rec := writePy(t, pyOrderV1)
	res, err := localrun.RunFile(context.Background(), rec, localrun.Options{Input: json.RawMessage(orderInput)}, localrun.LoadOptions{})
	if err != nil || !res.Succeeded() {
		t.Fatalf("recording: %v %+v", err, res)
	}
	journal := res.Journal[:3] // as a run sleeping at cool_off holds it
	journal[2].State = engine.StateSleeping
	for _, tc := range []struct {
		name, source, divergence, site string
	}{
		{name: "the same code", source: pyOrderV1},
		{name: "a changed step body", source: strings.Replace(pyOrderV1, `price // 10`, `price // 5`, 1)},
		{name: "a renamed step", source: strings.Replace(pyOrderV1, `ctx.step("tax"`, `ctx.step("vat"`, 1),
			divergence: "entry 2: the journal recorded step tax, the new code calls step vat", site: "py_order.py:8 in handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, w, err := localrun.LoadFile(context.Background(), writePy(t, tc.source), localrun.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			res, err := localrun.Replay(context.Background(), w, journal, localrun.ReplayOptions{Input: json.RawMessage(orderInput)})
			if err != nil {
				t.Fatal(err)
			}
			if tc.divergence == "" {
				if !res.Compatible() || res.Stop != "at sleep cool_off, sleeping in the recorded run" {
					t.Fatalf("want compatible up to the sleep, got %s / %q", res.Divergence, res.Stop)
				}
				return
			}
			if res.Compatible() || !strings.Contains(res.Divergence.String(), tc.divergence) || !strings.Contains(res.Divergence.Site, tc.site) {
				t.Fatalf("want %q at %q, got %+v", tc.divergence, tc.site, res.Divergence)
			}
		})
	}
}

// writePy writes source as py_order.py in a directory of its own and returns its path.
func writePy(t *testing.T, source string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "py_order.py")
	if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
