package restapi

import (
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestRunNamesSortNewestFirst(t *testing.T) {
	start := time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC)
	var names []string
	for i := range 200 {
		// Nanoseconds apart, seconds apart and years apart all keep the order.
		at := start.Add(time.Duration(i) * time.Nanosecond).Add(time.Duration(i*i) * time.Hour)
		names = append(names, NewRunName("hello", at))
	}
	if !sort.SliceIsSorted(names, func(i, j int) bool { return names[i] > names[j] }) {
		t.Fatalf("names of later runs do not sort first: %v", names[:5])
	}
}

func TestRunNamesAreValidLabelValues(t *testing.T) {
	now := time.Now()
	for _, workflow := range []string{"hello", "nightly_report", "A.B-c_D", strings.Repeat("x", 253), "9", "a..b__c"} {
		name := NewRunName(workflow, now)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("NewRunName(%q) = %q: %v", workflow, name, errs)
		}
		if errs := validation.IsValidLabelValue(name); len(errs) > 0 || len(name) > 63 {
			t.Errorf("NewRunName(%q) = %q is not a label value: %v", workflow, name, errs)
		}
		idem := IdempotentRunName(workflow, "key")
		if errs := validation.IsDNS1123Label(idem); len(errs) > 0 {
			t.Errorf("IdempotentRunName(%q) = %q: %v", workflow, idem, errs)
		}
	}
	if got := NewRunName("nightly_report", now); !strings.Contains(got, "-nightly-report-") {
		t.Errorf("RunName does not show the workflow: %q", got)
	}
}

func TestIdempotentRunNamesDependOnWorkflowAndKeyOnly(t *testing.T) {
	if first, again := IdempotentRunName("hello", "k"), IdempotentRunName("hello", "k"); first != again {
		t.Error("the same key gives different names")
	}
	if IdempotentRunName("hello", "k") == IdempotentRunName("hello", "k2") ||
		IdempotentRunName("a_b", "k") == IdempotentRunName("a-b", "k") {
		t.Error("different requests share a name")
	}
}
