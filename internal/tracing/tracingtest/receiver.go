// Package tracingtest is an OTLP/HTTP trace receiver for the specs of traces and for the
// benchmark's tracing figure: a local stand-in for the collector in front of Jaeger or Tempo,
// which decodes each export with the collector's own protobuf types (ptraceotlp), so that
// what it keeps is what a real collector would have received.
package tracingtest

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Span is what the receiver keeps of one received span; IDs are in hex, as a traceparent
// writes them.
type Span struct {
	Name             string
	TraceID          string
	SpanID, ParentID string
	Start, End       time.Time
	Attrs            map[string]any
	Errored          bool
	// Links are the span IDs linked to, LinkedTraces their trace IDs.
	Links             []string
	LinkedTraces      []string
	StatusDescription string
}

// Receiver serves POST /v1/traces and keeps every span it decodes. Its methods are safe for
// concurrent use.
type Receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []Span
}

// NewReceiver starts a receiver on a free port of 127.0.0.1; Close stops it.
func NewReceiver() *Receiver {
	r := &Receiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = httptest.NewServer(mux)
	return r
}

// URL is the receiver's base URL, the value of OTEL_EXPORTER_OTLP_ENDPOINT (with
// OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf) that sends a manager's spans here.
func (r *Receiver) URL() string { return r.srv.URL }

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// export decodes one ExportTraceServiceRequest and answers as a collector does.
func (r *Receiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	exp := ptraceotlp.NewExportRequest()
	if err := exp.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.keep(exp.Traces())
	out, err := ptraceotlp.NewExportResponse().MarshalProto()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// keep stores the spans of td.
func (r *Receiver) keep(td ptrace.Traces) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				r.spans = append(r.spans, spanOf(s))
			}
		}
	}
}

// spanOf is what the receiver keeps of s.
func spanOf(s ptrace.Span) Span {
	out := Span{
		Name: s.Name(), TraceID: hexOf(s.TraceID()), SpanID: hexOf(s.SpanID()),
		Start: s.StartTimestamp().AsTime(), End: s.EndTimestamp().AsTime(),
		Attrs: s.Attributes().AsRaw(), Errored: s.Status().Code() == ptrace.StatusCodeError,
		StatusDescription: s.Status().Message(),
	}
	if p := s.ParentSpanID(); !p.IsEmpty() {
		out.ParentID = hexOf(p)
	}
	for _, l := range s.Links().All() {
		out.Links = append(out.Links, hexOf(l.SpanID()))
		out.LinkedTraces = append(out.LinkedTraces, hexOf(l.TraceID()))
	}
	return out
}

// hexOf is an ID in hex, as a traceparent writes it.
func hexOf[ID pcommon.TraceID | pcommon.SpanID](id ID) string {
	switch v := any(id).(type) {
	case pcommon.TraceID:
		return hex.EncodeToString(v[:])
	case pcommon.SpanID:
		return hex.EncodeToString(v[:])
	}
	return ""
}

// Named returns the received spans called name, in the order they arrived.
func (r *Receiver) Named(name string) []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Span
	for _, s := range r.spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// All returns every received span, in the order they arrived.
func (r *Receiver) All() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}
