package runstore

import (
	"strings"
	"testing"
)

// TestResourceVersionOfReadsTheMetadataWhereverItIs: the status write's answer is read only up
// to its metadata, which may come before or after the status, and an answer without one is
// an error rather than an empty version.
func TestResourceVersionOfReadsTheMetadataWhereverItIs(t *testing.T) {
	status := `"status":{"journal":[` + strings.Repeat(`{"name":"s","kind":"Step","state":"Completed","result":{"metadata":{"resourceVersion":"wrong"}}},`, 50) + `{"name":"t"}]}`
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"metadata first, as the API server writes it", `{"apiVersion":"v1","kind":"WorkflowRun","metadata":{"name":"r","resourceVersion":"42"},` + status + `}`, "42"},
		{"metadata after the status", `{"kind":"WorkflowRun",` + status + `,"metadata":{"resourceVersion":"43","name":"r"}}`, "43"},
		{"no metadata", `{"kind":"WorkflowRun",` + status + `}`, ""},
		{"no resourceVersion", `{"metadata":{"name":"r"},` + status + `}`, ""},
		{"not an object", `[1,2]`, ""},
		{"cut short", `{"kind":"WorkflowRun","metadata":{"resourceVer`, ""},
	} {
		got, err := resourceVersionOf([]byte(tc.raw))
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: got %q and no error, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// BenchmarkResourceVersionOf is the answer's read for a run with a full open journal.
func BenchmarkResourceVersionOf(b *testing.B) {
	raw := []byte(`{"apiVersion":"workflows.centaur.dev/v1alpha1","kind":"WorkflowRun","metadata":{"name":"r","namespace":"n","resourceVersion":"42","managedFields":[{"manager":"m","operation":"Update","fieldsV1":{"f:status":{}}}]},"spec":{"workflowName":"w"},"status":{"journal":[` +
		strings.Repeat(`{"name":"step-0001","kind":"Step","state":"Completed","attempts":1,"startedAt":"2026-12-07T12:00:00.000000Z","finishedAt":"2026-12-07T12:00:00.000100Z","result":"done"},`, 31) + `{"name":"t"}]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := resourceVersionOf(raw); err != nil {
			b.Fatal(err)
		}
	}
}
