package schedule

import (
	"errors"
	"fmt"
	"slices"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
)

// concurrencyPolicies and catchUpPolicies are the values a declared schedule may name, as
// WorkflowSchedule's spec allows them.
var (
	concurrencyPolicies = []workflowsv1alpha1.ConcurrencyPolicy{workflowsv1alpha1.ConcurrencyAllow, workflowsv1alpha1.ConcurrencyForbid, workflowsv1alpha1.ConcurrencyReplace}
	catchUpPolicies     = []workflowsv1alpha1.CatchUpPolicy{workflowsv1alpha1.CatchUpNone, workflowsv1alpha1.CatchUpLatest, workflowsv1alpha1.CatchUpAll}
)

// CheckDeclaration reports what makes a schedule declared by a workflow's code or file
// unusable: its cron expression or time zone, its policies. Workflow files are checked with it
// when they load (workflowfile.Config.CheckSchedule), by the manager, centaur lint and
// centaur run alike, so a bad SCHEDULES is a load error with the file's name.
func CheckDeclaration(spec durable.ScheduleSpec) error {
	if _, err := Parse(spec.Cron, spec.TimeZone, time.Now()); err != nil {
		if se, ok := errors.AsType[*SpecError](err); ok {
			return se.Declared()
		}
		return err
	}
	if p := workflowsv1alpha1.ConcurrencyPolicy(spec.ConcurrencyPolicy); p != "" && !slices.Contains(concurrencyPolicies, p) {
		return fmt.Errorf("concurrency policy %q: want Allow, Forbid or Replace", p)
	}
	if c := workflowsv1alpha1.CatchUpPolicy(spec.CatchUp); c != "" && !slices.Contains(catchUpPolicies, c) {
		return fmt.Errorf("catch-up %q: want None, Latest or All", c)
	}
	if spec.MaxCatchUp < 0 || spec.StartingDeadline < 0 || spec.Jitter < 0 {
		return errors.New("max catch-up, starting deadline and jitter cannot be negative")
	}
	return nil
}
