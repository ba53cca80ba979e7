package tracing_test

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

// span is what the specs check of one received span.
type span struct {
	name              string
	traceID           string
	spanID, parentID  string
	start, end        time.Time
	attrs             map[string]any
	errored           bool
	links             []string // the span IDs linked to
	linkedTraces      []string
	statusDescription string
}

// receiver is an OTLP/HTTP trace receiver: it decodes each export with the collector's own
// protobuf types (ptraceotlp) and keeps the spans, as a collector in front of Jaeger or Tempo
// would receive them.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
}

// newReceiver serves POST /v1/traces on a free port of 127.0.0.1.
func newReceiver() *receiver {
	r := &receiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = httptest.NewServer(mux)
	return r
}

// export decodes one ExportTraceServiceRequest and answers as a collector does.
func (r *receiver) export(w http.ResponseWriter, req *http.Request) {
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
func (r *receiver) keep(td ptrace.Traces) {
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

// spanOf is what the specs check of s.
func spanOf(s ptrace.Span) span {
	out := span{
		name: s.Name(), traceID: hexOf(s.TraceID()), spanID: hexOf(s.SpanID()),
		start: s.StartTimestamp().AsTime(), end: s.EndTimestamp().AsTime(),
		attrs: s.Attributes().AsRaw(), errored: s.Status().Code() == ptrace.StatusCodeError,
		statusDescription: s.Status().Message(),
	}
	if p := s.ParentSpanID(); !p.IsEmpty() {
		out.parentID = hexOf(p)
	}
	for _, l := range s.Links().All() {
		out.links = append(out.links, hexOf(l.SpanID()))
		out.linkedTraces = append(out.linkedTraces, hexOf(l.TraceID()))
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

// named returns the received spans called name.
func (r *receiver) named(name string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// all returns every received span.
func (r *receiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}
