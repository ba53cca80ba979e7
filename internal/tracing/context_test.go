package tracing

import (
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// testRun is a run named name with uid, started by a caller of traceparent ("" for none).
func testRun(name, uid, traceparent string) *workflowsv1alpha1.WorkflowRun {
	run := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: k8stypes.UID("uid-" + uid)}}
	KeepParent(run, traceparent)
	return run
}

func TestIncomingKeepsOnlyValidTraceparents(t *testing.T) {
	for value, want := range map[string]string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01": "",
		"not a traceparent": "",
		"":                  "",
	} {
		header := http.Header{}
		header.Set("Traceparent", value)
		if got := Incoming(header); got != want {
			t.Errorf("Incoming(%q) = %q, want %q", value, got, want)
		}
	}
}

func TestRunSpanContextIsTheRunsOwnAndStable(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	joined := RunSpanContext(testRun("a", "1", parent))
	if joined.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !joined.IsSampled() || !joined.SpanID().IsValid() {
		t.Errorf("a run started with traceparent %s has span context %v", parent, joined)
	}
	if again := RunSpanContext(testRun("a", "1", parent)); !again.Equal(joined) {
		t.Errorf("the same run's span context changed: %v, then %v", joined, again)
	}
	if other := RunSpanContext(testRun("b", "2", parent)); other.SpanID() == joined.SpanID() {
		t.Errorf("two runs of one trace share span %s", other.SpanID())
	}
	own, other := RunSpanContext(testRun("a", "1", "")), RunSpanContext(testRun("a", "3", ""))
	if !own.IsValid() || !own.IsSampled() || own.TraceID() == other.TraceID() {
		t.Errorf("runs without a parent: %v and %v, want valid, sampled, each its own trace", own, other)
	}
	unsampled := RunSpanContext(testRun("a", "1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
	if unsampled.IsSampled() {
		t.Error("a run whose caller did not sample is sampled")
	}
}

func TestChildTraceparentNamesTheChildsSpan(t *testing.T) {
	parent := testRun("parent", "1", "")
	child := testRun("parent-kid", "2", ChildTraceparent(parent))
	got, want := RunSpanContext(child), childSpanContext(RunSpanContext(parent), "default", "parent-kid")
	if !got.Equal(want) {
		t.Errorf("the child's span is %v; its parent links to %v", got, want)
	}
	if parentOf(child).SpanID() != RunSpanContext(parent).SpanID() {
		t.Errorf("the child's span is not under its parent's run span")
	}
}

func TestEnabledFollowsTheOTELVariables(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
	} {
		for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"} {
			t.Setenv(k, c.env[k])
		}
		if got := Enabled(); got != c.want {
			t.Errorf("Enabled() with %v = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestFromEnvRefusesAnUnknownProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if p, err := FromEnv(t.Context()); err == nil {
		t.Errorf("FromEnv with protocol http/json = %v, want an error", p)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	if p, err := FromEnv(t.Context()); p != nil || err != nil {
		t.Errorf("FromEnv without an endpoint = %v, %v, want nil (off)", p, err)
	}
}

func TestWaitErrorType(t *testing.T) {
	for message, want := range map[string]string{
		"timed out":                           "timeout",
		"ChildDeleted: the child was deleted": "ChildDeleted",
		"something broke":                     "_OTHER",
	} {
		if got := waitErrorType(message); got != want {
			t.Errorf("waitErrorType(%q) = %q, want %q", message, got, want)
		}
	}
}
