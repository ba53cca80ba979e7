package durable_test

import (
	"slices"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
)

func TestWithScheduleDeclaresSchedulesInOrder(t *testing.T) {
	nightly := durable.ScheduleSpec{Cron: "0 2 * * *", TimeZone: "Europe/Berlin", Input: map[string]string{"channel": "#ops"}}
	hourly := durable.ScheduleSpec{Name: "hourly", Cron: "@hourly", CatchUp: "None", Jitter: 30 * time.Second}
	w := durable.Define("report", func(*durable.Context, struct{}) (string, error) { return "", nil },
		durable.WithSchedule(nightly), durable.WithSchedule(hourly))
	got := w.Schedules()
	if len(got) != 2 || got[0].Cron != nightly.Cron || got[1].Name != "hourly" || got[1].Jitter != 30*time.Second {
		t.Fatalf("Schedules() = %+v", got)
	}
	got[0].Cron = "changed"
	if w.Schedules()[0].Cron != "0 2 * * *" {
		t.Error("Schedules() hands out the workflow's own slice")
	}
	plain := durable.Define("plain", func(*durable.Context, struct{}) (string, error) { return "", nil })
	if !slices.Equal(plain.Schedules(), nil) {
		t.Errorf("a workflow without WithSchedule declares %v", plain.Schedules())
	}
}
