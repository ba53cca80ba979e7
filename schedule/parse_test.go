package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// utc parses an RFC 3339 time, for the tables.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// ticks returns the first n ticks of s after from, in UTC RFC 3339.
func ticks(s Schedule, from time.Time, n int) []string {
	var out []string
	for t := from; len(out) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t.UTC().Format(time.RFC3339))
	}
	return out
}

func TestParseRejectsWhatItCannotRun(t *testing.T) {
	anchor := utc(t, "2026-01-01T00:00:00Z")
	cases := []struct {
		expr, zone, reason, fragment string
	}{
		{"0 2 * *", "", workflowsv1alpha1.ReasonInvalidSchedule, "has 4 fields"},
		{"0 25 * * *", "", workflowsv1alpha1.ReasonInvalidSchedule, "above maximum"},
		{"0 2 * * * *", "", workflowsv1alpha1.ReasonInvalidSchedule, "has 6 fields"},
		{"TZ=Europe/Berlin 0 2 * * *", "", workflowsv1alpha1.ReasonInvalidSchedule, "spec.timeZone"},
		{"CRON_TZ=UTC 0 2 * * *", "", workflowsv1alpha1.ReasonInvalidSchedule, "spec.timeZone"},
		{"@fortnightly", "", workflowsv1alpha1.ReasonInvalidSchedule, "not a macro"},
		{"@every 500ms", "", workflowsv1alpha1.ReasonInvalidSchedule, "at least 1s"},
		{"@every 1500ms", "", workflowsv1alpha1.ReasonInvalidSchedule, "whole number of seconds"},
		{"@every soon", "", workflowsv1alpha1.ReasonInvalidSchedule, "Go duration"},
		{"0 0 30 2 *", "", workflowsv1alpha1.ReasonInvalidSchedule, "never falls"},
		{"0 2 * * *", "Mars/Olympus_Mons", workflowsv1alpha1.ReasonInvalidTimeZone, "IANA"},
		{"0 2 * * *", "Local", workflowsv1alpha1.ReasonInvalidTimeZone, "differs between machines"},
	}
	for _, c := range cases {
		_, err := Parse(c.expr, c.zone, anchor)
		var se *SpecError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q, %q) = %v, want a SpecError", c.expr, c.zone, err)
			continue
		}
		if se.Reason != c.reason || !strings.Contains(se.Message, c.fragment) {
			t.Errorf("Parse(%q, %q): %s %q, want %s containing %q", c.expr, c.zone, se.Reason, se.Message, c.reason, c.fragment)
		}
	}
}

func TestParseReadsCronMacrosAndIntervals(t *testing.T) {
	from := utc(t, "2026-06-10T10:17:03Z") // a Wednesday
	cases := []struct {
		expr string
		want []string
	}{
		{"*/15 * * * *", []string{"2026-06-10T10:30:00Z", "2026-06-10T10:45:00Z", "2026-06-10T11:00:00Z"}},
		{"0 9 * * 1-5", []string{"2026-06-11T09:00:00Z", "2026-06-12T09:00:00Z", "2026-06-15T09:00:00Z"}},
		{"@hourly", []string{"2026-06-10T11:00:00Z", "2026-06-10T12:00:00Z"}},
		{"@daily", []string{"2026-06-11T00:00:00Z", "2026-06-12T00:00:00Z"}},
		{"@weekly", []string{"2026-06-14T00:00:00Z", "2026-06-21T00:00:00Z"}},
		{"@monthly", []string{"2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z"}},
		{"@yearly", []string{"2027-01-01T00:00:00Z"}},
	}
	for _, c := range cases {
		s, err := Parse(c.expr, "UTC", from)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.expr, err)
		}
		if got := ticks(s, from, len(c.want)); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%q after %s: %v, want %v", c.expr, from, got, c.want)
		}
	}
}

// TestEveryIsAnchoredAtCreation: @every ticks at the anchor (cut to the second) plus whole
// multiples of the interval, whatever time the next tick is asked from, so two replicas that
// ask at different moments compute the same ticks.
func TestEveryIsAnchoredAtCreation(t *testing.T) {
	anchor := utc(t, "2026-06-10T10:00:00Z").Add(700 * time.Millisecond)
	s, err := Parse("@every 2s", "Europe/Berlin", anchor)
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"2026-06-10T09:00:00Z", "2026-06-10T10:00:00Z", "2026-06-10T10:00:01.999Z"} {
		if got := s.Next(utc(t, from)); !got.Equal(utc(t, "2026-06-10T10:00:02Z")) {
			t.Errorf("Next(%s) = %s, want the first tick 10:00:02", from, got)
		}
	}
	if got := s.Next(utc(t, "2026-06-10T10:00:02Z")); !got.Equal(utc(t, "2026-06-10T10:00:04Z")) {
		t.Errorf("Next(10:00:02) = %s, want 10:00:04", got)
	}
	if got := s.Next(utc(t, "2026-06-13T10:00:05Z")); !got.Equal(utc(t, "2026-06-13T10:00:06Z")) {
		t.Errorf("three days on: Next(10:00:05) = %s, want 10:00:06", got)
	}
}

// TestDaylightSaving pins down both changes of the clock, in zones that have them, for
// fixed-time schedules (one run every night, also on the nights of a change) and for schedules
// that follow the clock (one run every real hour).
func TestDaylightSaving(t *testing.T) {
	cases := []struct {
		name, expr, zone, from string
		want                   []string
	}{
		{
			// Berlin springs forward on 2026-03-29 at 02:00 CET (01:00Z) to 03:00 CEST: 02:00
			// does not exist that night, so the run starts at the jump.
			name: "nightly 02:00 across spring forward", expr: "0 2 * * *", zone: "Europe/Berlin", from: "2026-03-27T12:00:00Z",
			want: []string{"2026-03-28T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"},
		},
		{
			name: "nightly 02:30 across spring forward", expr: "30 2 * * *", zone: "Europe/Berlin", from: "2026-03-27T12:00:00Z",
			want: []string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
		},
		{
			// Berlin falls back on 2026-10-25 at 03:00 CEST (01:00Z) to 02:00 CET: 02:00 and
			// 02:30 happen twice that night; the run starts the first time only.
			name: "nightly 02:00 across fall back", expr: "0 2 * * *", zone: "Europe/Berlin", from: "2026-10-23T12:00:00Z",
			want: []string{"2026-10-24T00:00:00Z", "2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"},
		},
		{
			name: "nightly 02:30 across fall back", expr: "30 2 * * *", zone: "Europe/Berlin", from: "2026-10-24T12:00:00Z",
			want: []string{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
		},
		{
			name: "several fixed minutes in the doubled hour", expr: "0,30 2 * * *", zone: "Europe/Berlin", from: "2026-10-24T12:00:00Z",
			want: []string{"2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:00:00Z"},
		},
		{
			// A schedule with "*" in its hour field follows the clock: one run per real hour,
			// 01:30 CET then 03:30 CEST in spring.
			name: "hourly at :30 across spring forward", expr: "30 * * * *", zone: "Europe/Berlin", from: "2026-03-29T00:00:00Z",
			want: []string{"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z"},
		},
		{
			// ... and 02:30 CEST, 02:30 CET, 03:30 CET in autumn.
			name: "hourly at :30 across fall back", expr: "30 * * * *", zone: "Europe/Berlin", from: "2026-10-25T00:00:00Z",
			want: []string{"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"},
		},
		{
			name: "New York, nightly 02:30 across spring forward", expr: "30 2 * * *", zone: "America/New_York", from: "2026-03-07T12:00:00Z",
			want: []string{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
		},
		{
			// São Paulo's clocks skipped midnight on 2018-11-04 (00:00 became 01:00 -02): a
			// daily run starts at the jump.
			name: "midnight skipped", expr: "@daily", zone: "America/Sao_Paulo", from: "2018-11-02T12:00:00Z",
			want: []string{"2018-11-03T03:00:00Z", "2018-11-04T03:00:00Z", "2018-11-05T02:00:00Z"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := utc(t, c.from)
			s, err := Parse(c.expr, c.zone, from)
			if err != nil {
				t.Fatal(err)
			}
			if got := ticks(s, from, len(c.want)); strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

// TestNextFromInsideTheDoubledHour: asked from the second pass through a doubled hour, a
// fixed-time schedule does not fall again.
func TestNextFromInsideTheDoubledHour(t *testing.T) {
	s, err := Parse("30 2 * * *", "Europe/Berlin", utc(t, "2026-10-01T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	// 01:10Z is 02:10 CET, the second 02:10 of the night; 02:30 CET (01:30Z) must not tick.
	if got := s.Next(utc(t, "2026-10-25T01:10:00Z")); !got.Equal(utc(t, "2026-10-26T01:30:00Z")) {
		t.Errorf("Next = %s, want the next night's 02:30 CET", got)
	}
}

func TestDeclaredSpeaksOfTheDeclarationsFields(t *testing.T) {
	for _, tc := range []struct{ expr, zone, want, not string }{
		{"61 * * * *", "", "fix its cron", "spec.schedule"},
		{"0 2 * * *", "Mars/Olympus", "fix its time_zone", "spec.timeZone"},
		{"CRON_TZ=UTC 0 2 * * *", "", "its time_zone", "spec.timeZone"},
	} {
		_, err := Parse(tc.expr, tc.zone, time.Now())
		se, ok := err.(*SpecError)
		if !ok {
			t.Fatalf("Parse(%q, %q) = %v, want a *SpecError", tc.expr, tc.zone, err)
		}
		got := se.Declared()
		if got.Reason != se.Reason || !strings.Contains(got.Message, tc.want) || strings.Contains(got.Message, tc.not) {
			t.Errorf("Declared() of %q = %s: %q, want %s and no %s", tc.expr, got.Reason, got.Message, tc.want, tc.not)
		}
	}
}
