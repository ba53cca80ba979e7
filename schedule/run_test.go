package schedule

import (
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

func TestRunNames(t *testing.T) {
	tick := utc(t, "2027-03-28T01:00:00Z")
	if got := TickRunName("nightly-report", tick); got != "nightly-report-20270328-010000" {
		t.Errorf("RunName = %q", got)
	}
	if got := ManualRunName("nightly-report", tick); got != "nightly-report-20270328-010000-manual" {
		t.Errorf("ManualRunName = %q", got)
	}
	long := strings.Repeat("a-very-long-schedule-name-", 9) // 234 characters, a valid object name
	a, b := TickRunName(long, tick), TickRunName(long+"x", tick)
	for _, name := range []string{a, b, ManualRunName(long, tick)} {
		if len(name) > 63 || len(validation.IsDNS1123Label(name)) > 0 {
			t.Errorf("%q is not usable as a name and a label value", name)
		}
	}
	if a == b {
		t.Errorf("two long schedule names share the run name %q", a)
	}
	if TickRunName("s", tick.Add(time.Second)) == TickRunName("s", tick) {
		t.Error("ticks a second apart share a name")
	}
}

func TestNewRun(t *testing.T) {
	ws := &workflowsv1alpha1.WorkflowSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly-report", Namespace: "ops", UID: "uid-1"},
		Spec: workflowsv1alpha1.WorkflowScheduleSpec{WorkflowName: "nightly_report",
			Input: &apiextensionsv1.JSON{Raw: []byte(`{"channel":"ops"}`)}},
	}
	tick := utc(t, "2027-03-28T01:00:00Z")
	run := NewRun(ws, tick, TriggerTick)
	if run.Name != "nightly-report-20270328-010000" || run.Namespace != "ops" || run.Spec.WorkflowName != "nightly_report" ||
		string(run.Spec.Input.Raw) != `{"channel":"ops"}` {
		t.Errorf("run %+v", run)
	}
	if run.Labels[workflowsv1alpha1.LabelSchedule] != "nightly-report" || run.Labels[workflowsv1alpha1.LabelWorkflow] != "nightly_report" {
		t.Errorf("labels %v", run.Labels)
	}
	if got, ok := TickOf(run); !ok || !got.Equal(tick) || !IsTickRun(run) {
		t.Errorf("TickOf = %s, %v", got, ok)
	}
	if ref := metav1.GetControllerOf(run); ref == nil || ref.UID != "uid-1" || ref.Kind != "WorkflowSchedule" {
		t.Errorf("controller %+v", ref)
	}
	if manual := NewRun(ws, tick, TriggerManual); IsTickRun(manual) || !strings.HasSuffix(manual.Name, "-manual") {
		t.Errorf("manual run %s is taken for a tick's", manual.Name)
	}
}

func TestJitterIsStableAndBounded(t *testing.T) {
	j := Jitter("uid-1", 10*time.Second)
	other := Jitter("uid-2", 10*time.Second)
	base := utc(t, "2027-01-01T00:00:00Z")
	differs := false
	for i := range 100 {
		tick := base.Add(time.Duration(i) * time.Minute)
		d := j(tick)
		if d < 0 || d >= 10*time.Second || d != j(tick) || d%time.Millisecond != 0 {
			t.Fatalf("jitter of %s: %s", tick, d)
		}
		differs = differs || d != other(tick)
	}
	if !differs {
		t.Error("two schedules get the same delays")
	}
	if Jitter("uid-1", 0) != nil {
		t.Error("no jitter should be nil")
	}
}

func TestAdmit(t *testing.T) {
	cases := []struct {
		policy         workflowsv1alpha1.ConcurrencyPolicy
		active         int
		start, replace bool
	}{
		{workflowsv1alpha1.ConcurrencyAllow, 0, true, false},
		{workflowsv1alpha1.ConcurrencyAllow, 2, true, false},
		{workflowsv1alpha1.ConcurrencyForbid, 0, true, false},
		{workflowsv1alpha1.ConcurrencyForbid, 1, false, false},
		{workflowsv1alpha1.ConcurrencyReplace, 0, true, false},
		{workflowsv1alpha1.ConcurrencyReplace, 1, true, true},
	}
	for _, c := range cases {
		if start, replace := Admit(c.policy, c.active); start != c.start || replace != c.replace {
			t.Errorf("Admit(%s, %d) = %v, %v", c.policy, c.active, start, replace)
		}
	}
}
