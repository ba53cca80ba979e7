package runstore

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

func TestNamesAreValidAndDistinct(t *testing.T) {
	long := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("r", 253), UID: "uid-1"}}
	again := &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Name: long.Name, UID: "uid-2"}}
	step := strings.Repeat("Step Ñame/", 30)
	names := map[string]string{
		"segment 0":                SegmentName(long, 0),
		"segment 99999":            SegmentName(long, 99999),
		"segment of a new run":     SegmentName(again, 0),
		"payload attempt 1":        PayloadName(long, step, 1, 0),
		"payload attempt 1 part 2": PayloadName(long, step, 1, 2),
		"payload attempt 2":        PayloadName(long, step, 2, 0),
		"payload of a new run":     PayloadName(again, step, 1, 0),
	}
	seen := map[string]string{}
	for what, name := range names {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("%s: %q is not a valid object name: %v", what, name, errs)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s share the name %q", what, other, name)
		}
		seen[name] = what
	}
	if got := workflowsv1alpha1.LabelValue(long.Name); len(got) > 63 || len(validation.IsValidLabelValue(got)) > 0 {
		t.Errorf("LabelValue of a long name = %q, not a label value", got)
	}
}

func TestContinueTokensRoundTripAndStrangersAreRefused(t *testing.T) {
	c := cursor{segment: 12, position: 3456}
	got, err := parseCursor(c.String())
	if err != nil || got != c {
		t.Errorf("parseCursor(%q) = %+v, %v; want %+v", c.String(), got, err, c)
	}
	for _, bad := range []string{"garbage", "j1.", "j1.1", "j1.x.2", "j1.-1.2", "j2.1.2"} {
		if _, err := parseCursor(bad); err != ErrBadContinue {
			t.Errorf("parseCursor(%q) = %v; want ErrBadContinue", bad, err)
		}
	}
}
