// Package tracing turns runs into OpenTelemetry traces: one trace per run, a span for the run
// from its create to its end, and a child span for each step attempt, sleep, wait, child run
// and agent turn that the run records. It is off unless the standard OTEL_* variables name an
// OTLP endpoint (see FromEnv); off, every entry point is a nil check.
//
// Spans are made after the fact, from what the run's journal records and when it recorded it,
// with the recorded times. That is what makes a run's trace durable: the run span's identity
// derives from the run (RunSpanContext), so every execution and every replica continues the
// same trace without writing anything, and a step recorded before a restart is never traced
// again, since a replay records nothing new.
package tracing

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ServiceName is the service.name of the manager's spans unless OTEL_SERVICE_NAME says
// otherwise.
const ServiceName = "centaur-workflows"

// instrumentation names the tracer, as the OpenTelemetry conventions ask: the package that
// makes the spans.
const instrumentation = "github.com/centaur-dev/workflow-operator/internal/tracing"

// Provider is the manager's tracing when it is on: the SDK's tracer provider with its OTLP
// exporter. A nil *Provider is tracing off; its methods do nothing.
type Provider struct {
	sdk    *sdktrace.TracerProvider
	tracer trace.Tracer
}

// Enabled reports whether the OTEL_* variables ask for traces: an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT), the SDK is not
// disabled (OTEL_SDK_DISABLED) and the traces exporter is not "none" (OTEL_TRACES_EXPORTER).
func Enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// FromEnv builds the Provider the OTEL_* variables describe, or returns nil (tracing off)
// when they name no endpoint (see Enabled). The exporter speaks OTLP over gRPC or HTTP as
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL says ("grpc" or
// "http/protobuf", the default); the exporter and the batch span processor read the rest of
// their settings (headers, timeouts, OTEL_BSP_*) themselves, and the sampler follows
// OTEL_TRACES_SAMPLER. Shut the Provider down when the manager stops, so the last spans go
// out.
func FromEnv(ctx context.Context) (*Provider, error) {
	if !Enabled() {
		return nil, nil
	}
	exporter, err := exporterFromEnv(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("describe the manager for its traces: %w", err)
	}
	p := newProvider(exporter, res)
	// Go steps' own spans and instrumented clients (otel.Tracer, otelhttp) use the globals:
	// their spans go where the run's go, and their requests carry W3C trace context.
	otel.SetTracerProvider(p.sdk)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return p, nil
}

// newProvider is the Provider that batches spans to exporter, describing the manager as res.
func newProvider(exporter sdktrace.SpanExporter, res *resource.Resource) *Provider {
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(fixedIDs{}))
	return &Provider{sdk: sdk, tracer: sdk.Tracer(instrumentation)}
}

// exporterFromEnv is the OTLP exporter of the protocol the variables ask for.
func exporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exporter sdktrace.SpanExporter
		err      error
	)
	switch protocol {
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTLP protocol %q is not supported for traces: set OTEL_EXPORTER_OTLP_PROTOCOL to grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("create the OTLP trace exporter (%s): %w", protocol, err)
	}
	return exporter, nil
}

// ForceFlush exports the spans ended so far.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown exports the spans still queued and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut the tracer provider down: %w", err)
	}
	return nil
}

// fixedIDs is the SDK's ID generator: random IDs as the SDK's own, except for a span started
// with withIDs, which gets those. That is how a run's span, made when the run ends, takes the
// identity its children have referred to since the run started.
type fixedIDs struct{}

// idsKey carries the IDs a span must take in its start context.
type idsKey struct{}

// ids are a span's fixed trace and span IDs.
type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

// withIDs has the span started with ctx take tid and sid.
func withIDs(ctx context.Context, tid trace.TraceID, sid trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, ids{trace: tid, span: sid})
}

// NewIDs returns the fixed IDs of ctx, or random ones.
func (fixedIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if fixed, ok := ctx.Value(idsKey{}).(ids); ok {
		return fixed.trace, fixed.span
	}
	var tid trace.TraceID
	_, _ = rand.Read(tid[:])
	return tid, randomSpanID()
}

// NewSpanID returns the fixed span ID of ctx, or a random one.
func (fixedIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if fixed, ok := ctx.Value(idsKey{}).(ids); ok {
		return fixed.span
	}
	return randomSpanID()
}

// randomSpanID is a random, valid span ID.
func randomSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.BigEndian.PutUint64(sid[:], randUint64())
	}
	return sid
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}
