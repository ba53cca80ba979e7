package runstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// StorePayload stores data, the result of attempt attempt of run's primitive step, in
// WorkflowRunPayload objects of at most MaxPayloadPartBytes each, and returns the reference
// the journal entry keeps.
//
// It is idempotent by name: a part that exists already with the same digest is kept. A part
// that exists with other content is an orphan (an earlier execution stored this attempt's
// result, then died before the run's status recorded it, so nothing refers to it): it is
// deleted and written again.
func StorePayload(ctx context.Context, c client.Client, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, step string, attempt int, data []byte) (workflowsv1alpha1.PayloadRef, error) {
	sum := sha256.Sum256(data)
	ref := workflowsv1alpha1.PayloadRef{
		Name:   PayloadName(run, step, attempt, 0),
		Parts:  int32(max((len(data)+workflowsv1alpha1.MaxPayloadPartBytes-1)/workflowsv1alpha1.MaxPayloadPartBytes, 1)),
		Bytes:  int64(len(data)),
		SHA256: hex.EncodeToString(sum[:]),
	}
	for part := range int(ref.Parts) {
		lo := part * workflowsv1alpha1.MaxPayloadPartBytes
		hi := min(lo+workflowsv1alpha1.MaxPayloadPartBytes, len(data))
		obj := &workflowsv1alpha1.WorkflowRunPayload{
			ObjectMeta: metav1.ObjectMeta{
				Name:            partName(ref.Name, part),
				Namespace:       run.Namespace,
				Labels:          RunSelector(run),
				OwnerReferences: []metav1.OwnerReference{ownerRef(run)},
			},
			Spec: workflowsv1alpha1.WorkflowRunPayloadSpec{
				RunName: run.Name, Step: step, Attempt: int32(attempt),
				Part: int32(part), Parts: ref.Parts, SHA256: ref.SHA256, Data: data[lo:hi],
			},
		}
		if err := createPart(ctx, c, reader, run, obj); err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// createPart creates one part of a payload, keeping an identical part that exists already and
// replacing an orphan.
func createPart(ctx context.Context, c client.Client, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, obj *workflowsv1alpha1.WorkflowRunPayload) error {
	for range 3 {
		err := c.Create(ctx, obj)
		if !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("store payload %s: %w", obj.Name, err)
			}
			return nil
		}
		existing := &workflowsv1alpha1.WorkflowRunPayload{}
		if err := reader.Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
			if apierrors.IsNotFound(err) {
				continue // deleted meanwhile: create it again
			}
			return fmt.Errorf("read payload %s: %w", obj.Name, err)
		}
		if !ownedBy(existing, run) {
			return fmt.Errorf("payload %s exists and does not belong to run %s", obj.Name, run.Name)
		}
		if existing.Spec.SHA256 == obj.Spec.SHA256 && existing.Spec.Part == obj.Spec.Part && bytes.Equal(existing.Spec.Data, obj.Spec.Data) {
			return nil
		}
		uid := existing.UID
		if err := c.Delete(ctx, existing, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete orphaned payload %s: %w", obj.Name, err)
		}
	}
	return fmt.Errorf("store payload %s: it keeps reappearing with other content", obj.Name)
}

// LoadPayload reads back a result stored by StorePayload, past any cache, and checks its
// digest. A missing, foreign or corrupt part is ErrLost.
func LoadPayload(ctx context.Context, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, ref workflowsv1alpha1.PayloadRef) ([]byte, error) {
	data := make([]byte, 0, ref.Bytes)
	for part := range int(ref.Parts) {
		obj := &workflowsv1alpha1.WorkflowRunPayload{}
		name := partName(ref.Name, part)
		if err := reader.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("%w: payload %s does not exist", ErrLost, name)
			}
			return nil, fmt.Errorf("read payload %s: %w", name, err)
		}
		if !ownedBy(obj, run) || obj.Spec.SHA256 != ref.SHA256 || int(obj.Spec.Part) != part {
			return nil, fmt.Errorf("%w: payload %s is not part %d of result %s", ErrLost, name, part, ref.SHA256)
		}
		data = append(data, obj.Spec.Data...)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ref.SHA256 || int64(len(data)) != ref.Bytes {
		return nil, fmt.Errorf("%w: the parts of payload %s do not add up to the recorded result", ErrLost, ref.Name)
	}
	return data, nil
}

// SweepPayloads deletes the run's payloads that keep does not want (the orphans an execution
// that died left behind), and returns how many it deleted.
func SweepPayloads(ctx context.Context, c client.Client, reader client.Reader, run *workflowsv1alpha1.WorkflowRun, keep func(name string) bool) (int, error) {
	// Metadata only: the payloads' data stays on the API server.
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(workflowsv1alpha1.GroupVersion.WithKind("WorkflowRunPayloadList"))
	if err := reader.List(ctx, list, client.InNamespace(run.Namespace), client.MatchingLabels(RunSelector(run))); err != nil {
		return 0, fmt.Errorf("list the payloads of run %s: %w", run.Name, err)
	}
	deleted := 0
	for i := range list.Items {
		p := &list.Items[i]
		if !ownedBy(p, run) || keep(p.Name) {
			continue
		}
		if err := c.Delete(ctx, p); client.IgnoreNotFound(err) != nil {
			return deleted, fmt.Errorf("delete orphaned payload %s: %w", p.Name, err)
		}
		deleted++
	}
	return deleted, nil
}

// PartNames lists the names of the objects holding a stored result.
func PartNames(ref workflowsv1alpha1.PayloadRef) []string {
	names := make([]string, ref.Parts)
	for i := range names {
		names[i] = partName(ref.Name, i)
	}
	return names
}
