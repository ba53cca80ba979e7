package ledger

import (
	"slices"
	"testing"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestAPageRoundTripsItsIdentitiesInFixedSizeRecords(t *testing.T) {
	day := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	cm := newPage("centaur-system", day, 2)
	if cm.Name != "delivery-ledger-20261207-2" || cm.Labels[workflowsv1alpha1.LabelDeliveryLedger] != "20261207" {
		t.Fatalf("page named %q labelled %q, want delivery-ledger-20261207-2 labelled 20261207", cm.Name, cm.Labels[workflowsv1alpha1.LabelDeliveryLedger])
	}
	if errs := validation.IsDNS1123Subdomain(cm.Name); len(errs) > 0 {
		t.Fatalf("page name %q: %v", cm.Name, errs)
	}
	ids := []identity{identityOf("team-a", "hook-00000000000000aa"), identityOf("team-b", "hook-00000000000000aa"), identityOf("team-a", "hook-00000000000000bb")}
	if rest, changed := appendRecords(cm, ids, PageCapacity); len(rest) != 0 || !changed {
		t.Fatalf("appendRecords left %v, changed %v", rest, changed)
	}
	if got := len(cm.BinaryData[recordsKey]); got != len(ids)*recordSize {
		t.Fatalf("%d identities take %d bytes, want %d", len(ids), got, len(ids)*recordSize)
	}
	p, err := decodePage(cm)
	if err != nil {
		t.Fatal(err)
	}
	if !p.day.Equal(day) || p.seq != 2 || !slices.IsSorted(p.ids) || len(p.ids) != len(ids) {
		t.Fatalf("decoded day %v seq %d ids %v", p.day, p.seq, p.ids)
	}
	for _, id := range ids {
		if !p.holds(id) {
			t.Errorf("the page lost %x", id)
		}
	}
	if p.holds(identityOf("team-a", "hook-00000000000000cc")) {
		t.Error("the page holds a run it was never given")
	}
}

func TestAppendRecordsSkipsHeldIdentitiesAndStopsAtCapacity(t *testing.T) {
	cm := newPage("ns", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), 0)
	a, b, c, d := identity(1), identity(2), identity(3), identity(4)
	if rest, _ := appendRecords(cm, []identity{a, b}, 3); len(rest) != 0 {
		t.Fatalf("rest %v", rest)
	}
	if _, changed := appendRecords(cm, []identity{b, a}, 3); changed {
		t.Error("writing held identities again changed the page: writes must be idempotent")
	}
	rest, changed := appendRecords(cm, []identity{a, c, d}, 3)
	if !changed || !slices.Equal(rest, []identity{d}) {
		t.Fatalf("a full page took %v and left %v, want d left", changed, rest)
	}
	if got := decodeRecords(cm.BinaryData[recordsKey]); !slices.Equal(got, []identity{a, b, c}) {
		t.Fatalf("records %v, want a b c", got)
	}
	if p, _ := decodePage(cm); !p.full(3) {
		t.Error("a page at capacity says it has room")
	}
}

func TestTheDefaultCapacityFitsAConfigMap(t *testing.T) {
	const maxConfigMapData = 1 << 20 // the API server's bound on a ConfigMap's data
	if bytes := len(recordsKey) + PageCapacity*recordSize; bytes > maxConfigMapData {
		t.Fatalf("a full page holds %d bytes, over a ConfigMap's %d", bytes, maxConfigMapData)
	}
}

func TestDecodePageRefusesWhatTheLedgerNeverWrites(t *testing.T) {
	good := newPage("ns", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), 0)
	cut := good.DeepCopy()
	cut.BinaryData[recordsKey] = make([]byte, recordSize+3)
	foreign := good.DeepCopy()
	foreign.Name = "agents"
	for name, cm := range map[string]*corev1.ConfigMap{"cut short": cut, "foreign name": foreign} {
		if _, err := decodePage(cm); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	for _, name := range []string{"delivery-ledger-20260102", "delivery-ledger-2026010-1", "delivery-ledger-20260102-01", "delivery-ledger-20260102--1", "ledger-20260102-0"} {
		if _, _, ok := parsePageName(name); ok {
			t.Errorf("parsePageName(%q) took it for a page", name)
		}
	}
}

func TestPagesExpireOnceTheirLastRecordIsPastTheRetention(t *testing.T) {
	const retention = 30 * day
	pageDay := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{pageDay.Add(12 * time.Hour), false},                   // written today
		{pageDay.Add(day + retention), false},                  // the day's last record is exactly retention old
		{pageDay.Add(day + retention + time.Second), true},     // every record is older
		{pageDay.Add(day + retention + 10*day), true},          // long gone
		{time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC), false}, // a record of 23:59 on March 1 is under 30 days old
		{time.Date(2026, 4, 1, 0, 0, 1, 0, time.FixedZone("", 0)), true},
	} {
		if got := expired(pageDay, tc.now, retention); got != tc.want {
			t.Errorf("expired(%v, now %v) = %v, want %v", pageDay, tc.now, got, tc.want)
		}
	}
	if got := dayOf(time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("UTC-2", -2*3600))); !got.Equal(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("dayOf takes the UTC day: got %v", got)
	}
}

func TestALookupIgnoresPagesPastTheRetention(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	l := New(Config{Namespace: "ns", Retention: 2 * day, Clock: func() time.Time { return now }})
	for _, tc := range []struct {
		day time.Time
		run string
	}{{dayOf(now), "fresh-0000000000000001"}, {dayOf(now).Add(-5 * day), "stale-0000000000000002"}} {
		cm := newPage("ns", tc.day, 0)
		appendRecords(cm, []identity{identityOf("team", tc.run)}, PageCapacity)
		if err := l.remember(cm); err != nil {
			t.Fatal(err)
		}
	}
	if !l.Deleted("team", "fresh-0000000000000001") {
		t.Error("a run deleted today is not found")
	}
	if l.Deleted("team", "stale-0000000000000002") {
		t.Error("a run deleted past the retention is still found")
	}
	if l.Deleted("other-team", "fresh-0000000000000001") {
		t.Error("the namespace does not count in the identity")
	}
	if got := l.openSeq(dayOf(now)); got != 0 {
		t.Errorf("openSeq = %d, want today's page 0", got)
	}
}
