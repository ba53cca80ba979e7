package tracing

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// discard is an exporter that drops what it is given: the benchmarks measure the manager's
// side of a span (making it, queueing it, batching it), not the network.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkStepTraced is what tracing adds to one recorded step: the attempt's context, the
// hook's note and the span made once the step is recorded.
func BenchmarkStepTraced(b *testing.B) {
	p := newProvider(discard{}, resource.Empty())
	defer func() { _ = p.Shutdown(context.Background()) }()
	benchStep(b, p)
}

// BenchmarkStepUntraced is the same with tracing off: a nil *Run.
func BenchmarkStepUntraced(b *testing.B) {
	benchStep(b, nil)
}

// benchStep measures one recorded step's calls into the run trace of p (nil: tracing off).
func benchStep(b *testing.B, p *Provider) {
	rt := p.Run(testRun("bench", "1", ""))
	now := time.Now()
	entries := []engine.Entry{{Name: "step", Kind: engine.KindStep, State: engine.StateCompleted, Attempts: 1, StartedAt: now, FinishedAt: now}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = rt.StepContext(ctx, "step", 1)
		rt.StepAttempted("step", time.Millisecond, nil)
		rt.Recorded(entries)
	}
}
