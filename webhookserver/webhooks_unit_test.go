package webhookserver

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhook/envelope"
	"github.com/centaur-dev/workflow-operator/webhook/routes"
)

func TestDeliveryRunNameIsAStableDNSLabel(t *testing.T) {
	key := routes.Key{Namespace: "team-a", Name: "github"}
	long := strings.Repeat("a", 45) + "-" + strings.Repeat("b", 17) // 63 characters, a dash at 45
	for _, slug := range []string{"github-issues", "a", long, strings.Repeat("z", 63)} {
		name := DeliveryRunName(key, slug, "delivery-1")
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("DeliveryRunName(%q) = %q: not a DNS label: %v", slug, name, errs)
		}
		if DeliveryRunName(key, slug, "delivery-1") != name {
			t.Errorf("DeliveryRunName(%q) is not deterministic", slug)
		}
		if DeliveryRunName(key, slug, "delivery-2") == name {
			t.Errorf("DeliveryRunName(%q) ignores the trigger value", slug)
		}
		if DeliveryRunName(routes.Key{Namespace: "team-b", Name: "github"}, slug, "delivery-1") == name {
			t.Errorf("DeliveryRunName(%q) ignores the endpoint", slug)
		}
	}
	if got := DeliveryRunName(key, "github-issues", "d"); !strings.HasPrefix(got, "github-issues-") || len(got) != len("github-issues-")+16 {
		t.Errorf("DeliveryRunName = %q, want github-issues-<16 hex>", got)
	}
}

func TestParseCIDRs(t *testing.T) {
	got, err := ParseCIDRs(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,,10.1.2.3/16")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.1.0.0/16"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %d = %v, want %v", i, got[i], want[i])
		}
	}
	if got, err := ParseCIDRs(""); err != nil || len(got) != 0 {
		t.Errorf("empty list = %v, %v", got, err)
	}
	if _, err := ParseCIDRs("10.0.0.0/8,proxy.local"); err == nil {
		t.Error("a host name was accepted")
	}
}

// TestWebhookRunsOfALongWorkflowNameAreLabelledLikeOtherRuns checks that a workflow name over
// 63 characters still labels its webhook runs, with the value every other writer uses, so that
// GET /api/workflows/runs?workflow_name= lists them.
func TestWebhookRunsOfALongWorkflowNameAreLabelledLikeOtherRuns(t *testing.T) {
	long := strings.Repeat("triage-", 12) + "issues"
	route := routes.Route{Key: routes.Key{Namespace: "team-a", Name: "github"}, Slug: "github-issues", WorkflowName: long}
	run, refusal := newWebhookRun(route, envelope.Envelope{}, "delivery-1", "", 0)
	if refusal != nil {
		t.Fatalf("newWebhookRun: %v", refusal)
	}
	if got, want := run.Labels[workflowsv1alpha1.LabelWorkflow], workflowsv1alpha1.LabelValue(long); got != want || len(got) > 63 {
		t.Errorf("workflow label = %q, want %q", got, want)
	}
}
