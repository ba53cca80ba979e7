package schedule

import (
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/durable"
)

func TestCheckDeclarationRefusesWhatAWorkflowScheduleWouldNotTake(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec durable.ScheduleSpec
		want string // empty: accepted
	}{
		{"a plain cron", durable.ScheduleSpec{Cron: "0 2 * * *", TimeZone: "Europe/Berlin", ConcurrencyPolicy: "Forbid", CatchUp: "Latest"}, ""},
		{"a bad cron, in the declaration's words", durable.ScheduleSpec{Cron: "0 25 * * *"}, "fix its cron"},
		{"an unknown zone", durable.ScheduleSpec{Cron: "0 2 * * *", TimeZone: "Nowhere/City"}, "its time_zone"},
		{"an unknown concurrency policy", durable.ScheduleSpec{Cron: "0 2 * * *", ConcurrencyPolicy: "Sometimes"}, "want Allow, Forbid or Replace"},
		{"an unknown catch-up", durable.ScheduleSpec{Cron: "0 2 * * *", CatchUp: "Most"}, "want None, Latest or All"},
		{"a negative jitter", durable.ScheduleSpec{Cron: "0 2 * * *", Jitter: -1}, "cannot be negative"},
	} {
		err := CheckDeclaration(tc.spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
