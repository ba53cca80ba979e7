package workflowfile

import (
	"encoding/json"
	"fmt"
	"slices"

	"go.starlark.net/starlark"

	"github.com/centaur-dev/workflow-operator/durable"
)

// ReasonInvalidSchedule is the load failure of a file whose SCHEDULES the host refuses.
const ReasonInvalidSchedule = "InvalidSchedule"

// scheduleValue is the value of Schedule(...): one declared schedule.
type scheduleValue struct{ spec durable.ScheduleSpec }

func (s *scheduleValue) String() string        { return fmt.Sprintf("Schedule(cron = %q)", s.spec.Cron) }
func (s *scheduleValue) Type() string          { return "Schedule" }
func (s *scheduleValue) Freeze()               {}
func (s *scheduleValue) Truth() starlark.Bool  { return true }
func (s *scheduleValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: Schedule") }

// scheduleBuiltin implements Schedule(cron, time_zone = "", input = None, name = "",
// concurrency_policy = "", catch_up = "", max_catch_up = 0, starting_deadline = None,
// jitter = None): the fields of a WorkflowSchedule that a workflow declares for itself
// (docs/schedules.md).
func scheduleBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		spec                    durable.ScheduleSpec
		input, deadline, jitter starlark.Value = starlark.None, starlark.None, starlark.None
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cron", &spec.Cron, "time_zone?", &spec.TimeZone, "input?", &input,
		"name?", &spec.Name, "concurrency_policy?", &spec.ConcurrencyPolicy, "catch_up?", &spec.CatchUp,
		"max_catch_up?", &spec.MaxCatchUp, "starting_deadline?", &deadline, "jitter?", &jitter); err != nil {
		return nil, err
	}
	if input != starlark.None {
		raw, err := toJSON(input, 0)
		if err != nil {
			return nil, fmt.Errorf("%s(%q): the input must be JSON: its %w", b.Name(), spec.Cron, err)
		}
		spec.Input = json.RawMessage(raw)
	}
	var err error
	if deadline != starlark.None {
		if spec.StartingDeadline, err = toDuration(deadline); err != nil {
			return nil, fmt.Errorf("%s(%q): starting_deadline: %w", b.Name(), spec.Cron, err)
		}
	}
	if jitter != starlark.None {
		if spec.Jitter, err = toDuration(jitter); err != nil {
			return nil, fmt.Errorf("%s(%q): jitter: %w", b.Name(), spec.Cron, err)
		}
	}
	return &scheduleValue{spec: spec}, nil
}

// schedulesOf reads SCHEDULES: a list of Schedule(...) values, each checked by the host.
func schedulesOf(v starlark.Value, check func(durable.ScheduleSpec) error) ([]durable.ScheduleSpec, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	seq, ok := v.(starlark.Indexable)
	if !ok {
		return nil, fmt.Errorf("SCHEDULES must be a list of Schedule(...), got %s", v.Type())
	}
	var out []durable.ScheduleSpec
	for i := 0; i < seq.Len(); i++ {
		s, ok := seq.Index(i).(*scheduleValue)
		if !ok {
			return nil, fmt.Errorf("SCHEDULES[%d] is a %s, not a Schedule(...)", i, seq.Index(i).Type())
		}
		if check != nil {
			if err := check(s.spec); err != nil {
				return nil, fmt.Errorf("SCHEDULES[%d] (%q): %w", i, s.spec.Cron, err)
			}
		}
		if s.spec.Name != "" && slices.ContainsFunc(out, func(o durable.ScheduleSpec) bool { return o.Name == s.spec.Name }) {
			return nil, fmt.Errorf("SCHEDULES declares the name %q twice", s.spec.Name)
		}
		out = append(out, s.spec)
	}
	return out, nil
}
