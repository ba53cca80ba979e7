package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A page is one ConfigMap of the ledger: the identities of runs deleted on one day (UTC), as
// fixed-size records in its binaryData, at most PageCapacity of them; a busier day fills
// further pages. Pages are named delivery-ledger-<YYYYMMDD>-<n> (n from 0) and labelled LabelDeliveryLedger
// with their day, so that `kubectl get cm -l workflows.centaur.dev/delivery-ledger` lists them.

const (
	// PageCapacity is how many identities one page holds: 800,000 bytes of records, within
	// the API server's bound of 1 MiB on a ConfigMap's data (about 1.07 MB as base64 in a
	// request), so that a day with 100,000 deleted webhook runs takes one page.
	PageCapacity = 100_000

	// recordsKey is the binaryData key of a page's records.
	recordsKey = "runs"
	// recordSize is the size of a record: the first 8 bytes of the SHA-256 of
	// "<namespace>/<name>" of a deleted run, big-endian.
	recordSize = 8
	// pageNamePrefix starts the name of every page.
	pageNamePrefix = "delivery-ledger-"
	// dayLayout formats a page's day in its name and label.
	dayLayout = "20060102"
	// day is the span of time one page's records were written in.
	day = 24 * time.Hour
)

// identity is what the ledger keeps of a deleted run. 64 bits make a false match, a new
// delivery taken for a deleted one, about as likely as two deliveries sharing a run name
// (whose hash has 64 bits too): one in 10^13 per delivery with 3 million identities kept.
type identity uint64

// identityOf is the identity of the run namespace/name.
func identityOf(namespace, name string) identity {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	return identity(binary.BigEndian.Uint64(sum[:recordSize]))
}

// page is what a replica keeps of one ConfigMap of the ledger.
type page struct {
	name            string
	resourceVersion string
	day             time.Time
	seq             int
	ids             []identity // sorted
}

// holds reports whether the page has id.
func (p page) holds(id identity) bool {
	_, ok := slices.BinarySearch(p.ids, id)
	return ok
}

// full reports whether the page has room for no other record.
func (p page) full(capacity int) bool { return len(p.ids) >= capacity }

// dayOf is the UTC day t falls in, at midnight.
func dayOf(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// expired reports whether every record of a page of day is older than retention at now: even
// one written in the day's last moment was written more than retention ago.
func expired(pageDay, now time.Time, retention time.Duration) bool {
	return now.Sub(pageDay.Add(day)) > retention
}

// pageName is the name of the page seq of day.
func pageName(pageDay time.Time, seq int) string {
	return pageNamePrefix + pageDay.Format(dayLayout) + "-" + strconv.Itoa(seq)
}

// parsePageName returns the day and sequence number a page's name holds, or false for a name
// the ledger does not give its pages.
func parsePageName(name string) (time.Time, int, bool) {
	rest, ok := strings.CutPrefix(name, pageNamePrefix)
	if !ok {
		return time.Time{}, 0, false
	}
	dayPart, seqPart, ok := strings.Cut(rest, "-")
	if !ok {
		return time.Time{}, 0, false
	}
	pageDay, err := time.Parse(dayLayout, dayPart)
	if err != nil {
		return time.Time{}, 0, false
	}
	seq, err := strconv.Atoi(seqPart)
	if err != nil || seq < 0 || strconv.Itoa(seq) != seqPart {
		return time.Time{}, 0, false
	}
	return pageDay, seq, true
}

// newPage is the empty ConfigMap of the page seq of day, in namespace.
func newPage(namespace string, pageDay time.Time, seq int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: pageName(pageDay, seq),
			Labels: map[string]string{workflowsv1alpha1.LabelDeliveryLedger: pageDay.Format(dayLayout)},
		},
		BinaryData: map[string][]byte{},
	}
}

// decodePage reads a ConfigMap of the ledger. It refuses one whose name is not a page's or
// whose records are cut short: the ledger never writes such a thing.
func decodePage(cm *corev1.ConfigMap) (page, error) {
	pageDay, seq, ok := parsePageName(cm.Name)
	if !ok {
		return page{}, fmt.Errorf("ConfigMap %s/%s is labelled %s but is not named %s<YYYYMMDD>-<n>", cm.Namespace, cm.Name, workflowsv1alpha1.LabelDeliveryLedger, pageNamePrefix)
	}
	raw := cm.BinaryData[recordsKey]
	if len(raw)%recordSize != 0 {
		return page{}, fmt.Errorf("ConfigMap %s/%s: binaryData %q holds %d bytes, not a whole number of %d-byte records", cm.Namespace, cm.Name, recordsKey, len(raw), recordSize)
	}
	ids := decodeRecords(raw)
	slices.Sort(ids)
	return page{name: cm.Name, resourceVersion: cm.ResourceVersion, day: pageDay, seq: seq, ids: ids}, nil
}

// decodeRecords splits raw into identities, in their order.
func decodeRecords(raw []byte) []identity {
	ids := make([]identity, 0, len(raw)/recordSize)
	for i := 0; i+recordSize <= len(raw); i += recordSize {
		ids = append(ids, identity(binary.BigEndian.Uint64(raw[i:])))
	}
	return ids
}

// appendRecords adds to the page cm those of ids it does not hold yet, while it has room for
// them (capacity records in all). It returns the ids that did not fit, and whether cm changed.
func appendRecords(cm *corev1.ConfigMap, ids []identity, capacity int) (rest []identity, changed bool) {
	raw := cm.BinaryData[recordsKey]
	held := make(map[identity]bool, len(raw)/recordSize+len(ids))
	for _, id := range decodeRecords(raw) {
		held[id] = true
	}
	for i, id := range ids {
		if held[id] {
			continue
		}
		if len(raw)/recordSize >= capacity {
			rest = ids[i:]
			break
		}
		raw = binary.BigEndian.AppendUint64(raw, uint64(id))
		held[id], changed = true, true
	}
	if cm.BinaryData == nil {
		cm.BinaryData = map[string][]byte{}
	}
	cm.BinaryData[recordsKey] = raw
	return rest, changed
}
