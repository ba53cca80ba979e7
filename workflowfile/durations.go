package workflowfile

import (
	"fmt"
	"math"
	"time"

	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

// timedeltaBuiltin implements timedelta(days=0, seconds=0, microseconds=0, milliseconds=0,
// minutes=0, hours=0, weeks=0), Python's spelling of a duration, as a time.duration value.
func timedeltaBuiltin(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var days, seconds, micros, millis, minutes, hours, weeks starlark.Value = starlark.MakeInt(0), starlark.MakeInt(0),
		starlark.MakeInt(0), starlark.MakeInt(0), starlark.MakeInt(0), starlark.MakeInt(0), starlark.MakeInt(0)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "days?", &days, "seconds?", &seconds,
		"microseconds?", &micros, "milliseconds?", &millis, "minutes?", &minutes, "hours?", &hours, "weeks?", &weeks); err != nil {
		return nil, err
	}
	var total float64
	for _, part := range []struct {
		name string
		v    starlark.Value
		unit time.Duration
	}{
		{"days", days, 24 * time.Hour}, {"seconds", seconds, time.Second}, {"microseconds", micros, time.Microsecond},
		{"milliseconds", millis, time.Millisecond}, {"minutes", minutes, time.Minute}, {"hours", hours, time.Hour},
		{"weeks", weeks, 7 * 24 * time.Hour},
	} {
		n, ok := starlark.AsFloat(part.v)
		if !ok {
			return nil, fmt.Errorf("%s: %s must be a number, got %s", b.Name(), part.name, part.v.Type())
		}
		total += n * float64(part.unit)
	}
	if math.Abs(total) > math.MaxInt64 {
		return nil, fmt.Errorf("%s: the duration is out of range", b.Name())
	}
	return starlarktime.Duration(time.Duration(total)), nil
}

// toDuration accepts a duration as a time.duration (timedelta(...), time.parse_duration), a
// string such as "30s" or "1h30m", or a number of seconds.
func toDuration(v starlark.Value) (time.Duration, error) {
	switch x := v.(type) {
	case starlarktime.Duration:
		return time.Duration(x), nil
	case starlark.String:
		d, err := time.ParseDuration(string(x))
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: write it like \"30s\", \"5m\" or \"1h30m\"", string(x))
		}
		return d, nil
	case starlark.Int, starlark.Float:
		secs, _ := starlark.AsFloat(x)
		if math.IsNaN(secs) || math.Abs(secs*float64(time.Second)) > math.MaxInt64 {
			return 0, fmt.Errorf("%s seconds is not a duration (out of range, or not a number)", x)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("want a duration (timedelta(seconds = 30), \"30s\" or a number of seconds), got %s", v.Type())
}

// toTime accepts a time as a time.time value or an RFC 3339 string.
func toTime(v starlark.Value) (time.Time, error) {
	switch x := v.(type) {
	case starlarktime.Time:
		return time.Time(x), nil
	case starlark.String:
		t, err := time.Parse(time.RFC3339Nano, string(x))
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as \"2026-12-01T02:00:00Z\"", string(x))
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want a time (a time value or an RFC 3339 string), got %s", v.Type())
}
