package runstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// ErrLost says that part of a run's journal cannot be read back: a segment or payload the run's
// status counts on is missing, belongs to another run or does not hold what it should. The run
// cannot be replayed; it is not a transient error.
var ErrLost = errors.New("part of the run's journal is lost")

// segmentResource names WorkflowRunSegments in errors.
var segmentResource = schema.GroupResource{Group: workflowsv1alpha1.GroupVersion.Group, Resource: "workflowrunsegments"}

// Seal writes entries, which begin at position first of run's journal, into the run's segment
// number index, and returns how many of them the segment holds. A segment that holds receipts
// (see IsReceipt) is labelled LabelReceipts.
//
// Sealing is idempotent by name and checked by content: when the segment exists already (an
// earlier execution sealed it and died before the run's status counted it), Seal reads it
// back and adopts it if its entries are the first entries given, returning their number. Any
// other content means this execution's view of the run is stale, and Seal returns a conflict,
// so that the caller re-reads the run as after any write conflict.
func Seal(ctx context.Context, c client.Client, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, index int32, first int64, entries []workflowsv1alpha1.JournalEntry) (int, error) {
	labels := RunSelector(run)
	maps.Copy(labels, receiptLabels(entries))
	seg := &workflowsv1alpha1.WorkflowRunSegment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            SegmentName(run, index),
			Namespace:       run.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{ownerRef(run)},
		},
		Spec: workflowsv1alpha1.WorkflowRunSegmentSpec{RunName: run.Name, Index: index, FirstEntry: first, Entries: entries},
	}
	err := c.Create(ctx, seg)
	if err == nil {
		return len(entries), nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("seal segment %s: %w", seg.Name, err)
	}
	existing, err := ReadSegment(ctx, reader, run, index)
	if err != nil {
		return 0, err
	}
	held := existing.Spec.Entries
	if existing.Spec.FirstEntry != first || len(held) > len(entries) || !SameEntries(held, entries[:len(held)]) {
		return 0, apierrors.NewConflict(segmentResource, seg.Name,
			fmt.Errorf("segment %d already holds other entries than this execution would seal: the run advanced elsewhere", index))
	}
	return len(held), nil
}

// ReadSegment reads run's segment number index past any cache and checks that it belongs to
// this run at that index; a missing or foreign segment is ErrLost.
func ReadSegment(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, index int32) (*workflowsv1alpha1.WorkflowRunSegment, error) {
	seg := &workflowsv1alpha1.WorkflowRunSegment{}
	name := SegmentName(run, index)
	if err := reader.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, seg); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: segment %s (index %d) does not exist", ErrLost, name, index)
		}
		return nil, fmt.Errorf("read segment %s: %w", name, err)
	}
	if err := checkSegment(seg, run, index); err != nil {
		return nil, err
	}
	return seg, nil
}

// ListSegments reads every segment of run at once (one list per 100 segments), by index. It
// is how a run is read when few of its segments are cached; ReadSegment is cheaper for one.
func ListSegments(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun) (map[int32]*workflowsv1alpha1.WorkflowRunSegment, error) {
	out := map[int32]*workflowsv1alpha1.WorkflowRunSegment{}
	cont := ""
	for {
		var list workflowsv1alpha1.WorkflowRunSegmentList
		err := reader.List(ctx, &list, client.InNamespace(run.Namespace), client.MatchingLabels(RunSelector(run)), client.Limit(100), client.Continue(cont))
		if err != nil {
			return nil, fmt.Errorf("list the segments of run %s: %w", run.Name, err)
		}
		for i := range list.Items {
			seg := &list.Items[i]
			if ownedBy(seg, run) && seg.Name == SegmentName(run, seg.Spec.Index) {
				out[seg.Spec.Index] = seg
			}
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

// checkSegment returns ErrLost unless seg is run's segment number index.
func checkSegment(seg *workflowsv1alpha1.WorkflowRunSegment, run *workflowsv1alpha1.WorkflowRun, index int32) error {
	if !ownedBy(seg, run) || seg.Spec.Index != index || len(seg.Spec.Entries) == 0 {
		return fmt.Errorf("%w: segment %s is not segment %d of this run", ErrLost, seg.Name, index)
	}
	return nil
}

// SameEntries reports whether two lists of journal entries record the same things: equal
// fields, and results that are the same JSON values (the API server may reorder an object's
// keys when it stores it).
func SameEntries(a, b []workflowsv1alpha1.JournalEntry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		rx, ry := x.Result, y.Result
		x.Result, y.Result = nil, nil
		if !reflect.DeepEqual(normalizeTimes(x), normalizeTimes(y)) || !sameJSON(rx, ry) {
			return false
		}
	}
	return true
}

// normalizeTimes drops what a round trip through the API server changes in an entry's times
// (the location), so that entries compare by instant.
func normalizeTimes(e workflowsv1alpha1.JournalEntry) workflowsv1alpha1.JournalEntry {
	for _, t := range []**metav1.MicroTime{&e.StartedAt, &e.FinishedAt, &e.WakeAt} {
		if *t != nil {
			*t = &metav1.MicroTime{Time: (*t).UTC()}
		}
	}
	return e
}

// sameJSON reports whether two optional JSON values are equal as values.
func sameJSON(a, b *apiextensionsv1.JSON) bool { return EqualJSON(rawOf(a), rawOf(b)) }

// EqualJSON compares two JSON documents by meaning: object key order and whitespace do not
// matter (the API server re-encodes free-form JSON), numbers compare by their text, so no
// precision is lost; empty and null are equal. Invalid JSON equals nothing.
func EqualJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, okA := decodeJSON(a)
	vb, okB := decodeJSON(b)
	return okA && okB && reflect.DeepEqual(va, vb)
}

// decodeJSON decodes raw into plain Go values with json.Number numbers; empty is nil.
func decodeJSON(raw []byte) (any, bool) {
	if len(raw) == 0 {
		return nil, true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	return v, dec.Decode(&v) == nil
}

// rawOf returns the bytes of an optional JSON value, nil for an absent one.
func rawOf(v *apiextensionsv1.JSON) []byte {
	if v == nil {
		return nil
	}
	return v.Raw
}
