package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of a sealed segment. The manager seals far smaller segments (see the manager's
// --journal-segment-entries and --journal-segment-bytes); these bounds keep every segment, and
// the cost of checking that it never changes, well inside what the API server accepts.
const (
	// MaxSegmentEntries is the most entries one WorkflowRunSegment holds.
	MaxSegmentEntries = 1024
)

// WorkflowRunSegmentSpec is a sealed, contiguous part of a run's journal.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a sealed journal segment is immutable"
type WorkflowRunSegmentSpec struct {
	// runName is the WorkflowRun whose journal this segment belongs to (it also owns it).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	RunName string `json:"runName"`

	// index is the segment's position among the run's segments: 0 for the first. The run's
	// status.history.segments counts them, and the segments of a run, read in index order and
	// followed by status.journal, are the run's whole journal.
	// +kubebuilder:validation:Minimum=0
	Index int32 `json:"index"`

	// firstEntry is the position, in the run's whole journal, of this segment's first entry
	// (0 for the first entry the run recorded).
	// +kubebuilder:validation:Minimum=0
	FirstEntry int64 `json:"firstEntry"`

	// entries are the journal entries, in the order the run reached them. Every one is final
	// (Completed or Failed); a result stored out of line is referenced by its payload field.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=1024
	Entries []JournalEntry `json:"entries"`
}

// WorkflowRunSegment holds a sealed part of a WorkflowRun's journal: entries that are final,
// moved out of the run's status so that each step writes only the small open part of the
// journal however long the run is. Segments are written once and never change; the run owns
// them, so deleting the run deletes them. They are named <run>-<uid hash>-<index> and labelled
// workflows.centaur.dev/run=<run>, so
//
//	kubectl get wfrs -l workflows.centaur.dev/run=NAME --sort-by=.spec.index
//
// lists a run's journal in order (add -o yaml for the entries).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=wfrs,categories=centaur
// +kubebuilder:printcolumn:name="Run",type=string,JSONPath=`.spec.runName`
// +kubebuilder:printcolumn:name="Index",type=integer,JSONPath=`.spec.index`
// +kubebuilder:printcolumn:name="First",type=integer,JSONPath=`.spec.firstEntry`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WorkflowRunSegment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the sealed entries.
	Spec WorkflowRunSegmentSpec `json:"spec"`
}

// WorkflowRunSegmentList is a list of WorkflowRunSegments.
//
// +kubebuilder:object:root=true
type WorkflowRunSegmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkflowRunSegment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WorkflowRunSegment{}, &WorkflowRunSegmentList{})
}
