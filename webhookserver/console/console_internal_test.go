package console

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// newTestKeys returns session keys of this process only (no Secret), with a settable clock.
func newTestKeys(now *time.Time) *sessionKeys {
	k := newSessionKeys(nil, DefaultSecret, logr.Discard())
	k.now = func() time.Time { return *now }
	return k
}

func TestSessionCookiesAreSealed(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	keys := newTestKeys(&now)
	ctx := context.Background()
	s := newSession("admin.secret-key-value", now)
	value, err := keys.seal(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(value, "secret-key-value") {
		t.Fatal("the cookie shows the key")
	}
	got, err := keys.open(ctx, value)
	if err != nil || got != s {
		t.Fatalf("open = %+v, %v; want %+v", got, err, s)
	}
	if !keys.ephemeral() {
		t.Fatal("without a Secret the keys must be this process's own")
	}

	raw := []byte(value)
	raw[len(raw)-3] ^= 1
	if _, err := keys.open(ctx, string(raw)); err != errBadSession {
		t.Fatalf("a tampered cookie opened: %v", err)
	}
	if _, err := newTestKeys(&now).open(ctx, value); err != errBadSession {
		t.Fatalf("a cookie of another key opened: %v", err)
	}
	for _, bad := range []string{"", "%%%", "c2hvcnQ"} {
		if _, err := keys.open(ctx, bad); err != errBadSession {
			t.Fatalf("cookie %q: %v", bad, err)
		}
	}
	now = now.Add(SessionMaxAge + time.Second)
	if _, err := keys.open(ctx, value); err != errExpiredSession {
		t.Fatalf("an old session opened: %v", err)
	}
}

func TestCSRFTokensAreCompared(t *testing.T) {
	s := newSession("k", time.Now())
	if !validCSRF(s, s.CSRF) || validCSRF(s, "") || validCSRF(s, s.CSRF+"x") || validCSRF(s, newSession("k", time.Now()).CSRF) {
		t.Fatal("validCSRF accepts the wrong tokens")
	}
}

func TestSafeNextStaysInTheConsole(t *testing.T) {
	cases := map[string]string{
		"/console/runs?phase=Waiting":     "/console/runs?phase=Waiting",
		"/console/runs/default/x":         "/console/runs/default/x",
		"https://evil.example/console/":   "/console/runs",
		"//evil.example/console/runs":     "/console/runs",
		"/api/workflows":                  "/console/runs",
		"/console/sign-in?next=/x":        "/console/runs",
		"/console//evil.example":          "/console/runs",
		"/console/runs/live":              "/console/runs",
		"javascript:alert(1)":             "/console/runs",
		"":                                "/console/runs",
		"/console/workflows#wf-hello":     "/console/workflows",
		"/console/runs/default/x/live?a=": "/console/runs",
	}
	for in, want := range cases {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormJSONSaysWhereTheMistakeIs(t *testing.T) {
	if raw, problem := formJSON("  ", "The input"); raw != nil || problem != "" {
		t.Fatalf("empty input: %s, %q", raw, problem)
	}
	if raw, problem := formJSON(` {"a": [1, 2]} `, "The input"); string(raw) != `{"a": [1, 2]}` || problem != "" {
		t.Fatalf("valid input: %s, %q", raw, problem)
	}
	_, problem := formJSON("{\n  \"a\": 1,\n  \"b\": nope\n}", "The payload")
	if !strings.Contains(problem, "The payload is not valid JSON") || !strings.Contains(problem, "line 3, column 9") {
		t.Fatalf("problem = %q", problem)
	}
}

func TestDurationsReadLikeAPerson(t *testing.T) {
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	cases := []struct{ got, want string }{
		{humanDuration(350 * time.Millisecond), "350 ms"},
		{humanDuration(2400 * time.Millisecond), "2.4 s"},
		{humanDuration(192 * time.Second), "3 min 12 s"},
		{humanDuration(5*time.Hour + 3*time.Minute), "5 h 3 min"},
		{humanDuration(50 * time.Hour), "2 d 2 h"},
		{wholeSeconds(0), "< 1 s"},
		{wholeSeconds(2 * time.Second), "2 s"},
		{ago(now.Add(-12*time.Second), now), "12 s ago"},
		{ago(now.Add(3*time.Minute), now), "in 3 min"},
		{ago(now, now), "just now"},
		{ago(time.Time{}, now), "—"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestAwaitedEventsAreReadFromTheJournal(t *testing.T) {
	wake := metav1.NewMicroTime(time.Date(2026, 11, 24, 16, 0, 0, 0, time.UTC))
	f, ok := awaitedEvent(&workflowsv1alpha1.JournalEntry{Name: "decision", Kind: "Event", State: "Waiting", Target: "event approval.decided/github:org/repo:7", WakeAt: &wake})
	if !ok || f.Type != "approval.decided" || f.CorrelationID != "github:org/repo:7" || !f.Until.Equal(wake.Time) {
		t.Fatalf("awaitedEvent = %+v, %v", f, ok)
	}
	if _, ok := awaitedEvent(&workflowsv1alpha1.JournalEntry{Kind: "Event", State: "Completed", Target: "event a/b"}); ok {
		t.Fatal("a received event is still awaited")
	}
	if _, ok := awaitedEvent(&workflowsv1alpha1.JournalEntry{Kind: "Child", State: "Waiting", Target: "child wfr/x"}); ok {
		t.Fatal("a child wait is an event wait")
	}
}

// journalRun is a finished run whose journal has n steps, each 20 ms, every 50th retried.
func journalRun(n int) *workflowsv1alpha1.WorkflowRun {
	start := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	run := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "big", CreationTimestamp: metav1.NewTime(start)}}
	at := start
	for i := range n {
		from, to := metav1.NewMicroTime(at), metav1.NewMicroTime(at.Add(20*time.Millisecond))
		e := workflowsv1alpha1.JournalEntry{Name: fmt.Sprintf("item-%04d", i), Kind: "Step", State: "Completed", Attempts: 1, StartedAt: &from, FinishedAt: &to,
			Result: &apiextensionsv1.JSON{Raw: fmt.Appendf(nil, `{"item":%d,"ok":true}`, i)}}
		if i%50 == 0 {
			e.Attempts = 3
		}
		run.Status.Journal = append(run.Status.Journal, e)
		at = at.Add(25 * time.Millisecond)
	}
	started, finished := metav1.NewTime(start), metav1.NewTime(at)
	run.Status.StartedAt, run.Status.FinishedAt, run.Status.Phase = &started, &finished, workflowsv1alpha1.PhaseSucceeded
	return run
}

func TestTimelineBarsStayInsideTheAxis(t *testing.T) {
	run := journalRun(200)
	tl := timelineOf(run, run.Status.Journal, int64(len(run.Status.Journal)), time.Now())
	if len(tl.Entries) != 200 || tl.Retries != 8 {
		t.Fatalf("%d entries, %d retries", len(tl.Entries), tl.Retries)
	}
	for i, e := range tl.Entries {
		var x, w int
		if _, err := fmt.Sscanf(e.Bar, "x%d w%d", &x, &w); err != nil || x < 0 || w < 1 || x+w > barSteps {
			t.Fatalf("entry %d: bar %q outside 0..%d", i, e.Bar, barSteps)
		}
	}
	if tl.Entries[0].Bar != "x0 w1" || tl.Entries[199].Bar != "x199 w1" {
		t.Fatalf("the bars do not span the axis: first %q, last %q", tl.Entries[0].Bar, tl.Entries[199].Bar)
	}
	if e := tl.Entries[0]; !e.Retried || e.Class != "completed" || e.Offset != "+0 s" || e.Took != "took 20 ms" {
		t.Fatalf("first entry %+v", e)
	}
}

// BenchmarkRunPage1000 renders the live region of a run with 1,000 journal entries: the
// server's share of showing such a run.
func BenchmarkRunPage1000(b *testing.B) {
	run := journalRun(1000)
	for b.Loop() {
		live := runLive{Timeline: timelineOf(run, run.Status.Journal, int64(len(run.Status.Journal)), time.Now()), Now: time.Now()}
		if _, err := parsedPages.execute("run", "run-live", live); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWorkflowCardsShowWhatTheListingAdds(t *testing.T) {
	info := restapi.WorkflowInfo{Name: "nightly_report", Description: "Reports.", ExampleInput: []byte(`{"channel":"#ops"}`)}
	card := workflowCardOf(info, restapi.Principal{Namespaces: []string{"default", "team-a"}, DefaultNamespace: "team-a"})
	if card.Input != "{\n  \"channel\": \"#ops\"\n}" || card.Namespace != "team-a" || !card.Eager || len(card.Details) != 0 {
		t.Fatalf("card = %+v", card)
	}
	// Fields a newer listing reports (a workflow file's source and revision, its webhooks)
	// show up without a change to the console.
	got := details(map[string]json.RawMessage{
		"name": []byte(`"x"`), "source": []byte(`"file"`), "revision": []byte(`"nightly-report-3f9a2c81d04b"`),
		"webhooks": []byte(`[{"slug":"nightly"}]`), "empty": []byte(`null`),
	})
	want := []detail{{Name: "revision", Value: "nightly-report-3f9a2c81d04b"}, {Name: "source", Value: "file"}, {Name: "webhooks", Value: "[\n  {\n    \"slug\": \"nightly\"\n  }\n]", Block: true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("details = %+v\nwant      %+v", got, want)
	}
}

// A run's text (an idempotency key, a correlation id) may hold a carriage return, which ends a
// line of an event stream as a line feed does: it must stay data, never start an event.
func TestALiveEventCannotBeForgedWithACarriageReturn(t *testing.T) {
	rec := httptest.NewRecorder()
	e := startEvents(rec)
	if err := e.send("update", "key-1\revent: signout\r\ndata: x\nlast"); err != nil {
		t.Fatal(err)
	}
	stream := rec.Body.String()
	for _, line := range strings.FieldsFunc(stream, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.HasPrefix(line, "event: ") && line != "event: update" {
			t.Fatalf("the stream starts a forged event: %q in %q", line, stream)
		}
	}
	if !strings.Contains(stream, "data: event: signout\n") {
		t.Errorf("the forged text did not stay data: %q", stream)
	}
}

func TestOnlyATrustedProxyMaySayTheBrowserUsedHTTPS(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		peer  string
		proto string
		tls   bool
		want  bool
	}{
		{"203.0.113.5:4000", "https", false, false}, // a client's own word for it
		{"10.1.2.3:4000", "https", false, true},     // the ingress's
		{"10.1.2.3:4000", "", false, false},
		{"203.0.113.5:4000", "", true, true}, // TLS to the manager itself
	} {
		r := httptest.NewRequest(http.MethodGet, "/console/", nil)
		r.RemoteAddr = c.peer
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := isHTTPS(r, trusted); got != c.want {
			t.Errorf("%+v: isHTTPS = %v", c, got)
		}
	}
}

func TestCheckTraceURL(t *testing.T) {
	for _, tc := range []struct {
		tmpl, wantErr string
	}{
		{"", ""},
		{"https://jaeger.example.com/trace/{trace_id}", ""},
		{"http://tempo:3200/explore?traceId={trace_id}&span={span_id}", ""},
		{"jaeger.example.com/trace/{trace_id}", "not an http or https URL"},
		{"ftp://example.com/{trace_id}", "not an http or https URL"},
		{"https://jaeger.example.com/trace/", "does not name {trace_id}"},
		{"https://jaeger.example.com/trace/{traceid}", "does not name {trace_id}"},
	} {
		err := CheckTraceURL(tc.tmpl)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("CheckTraceURL(%q) = %v, want an error with %q", tc.tmpl, err, tc.wantErr)
		}
	}
}
