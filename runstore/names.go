package runstore

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// ChildName derives the name of an object a run's primitive creates (a child run, an agent
// turn, a payload): readable (the run and the primitive), unique per incarnation of the run (a
// hash of its UID and the primitive's name), and at most 63 characters so that it can serve as
// a label value too. A replay, or a crash between creating the object and recording it, finds
// the same name again.
func ChildName(run *workflowsv1alpha1.WorkflowRun, step string) string {
	hash := shortHash(string(run.UID) + "/" + step)
	readable := strings.Trim(invalidNameChars.ReplaceAllString(strings.ToLower(step), "-"), "-")
	prefix := truncate(run.Name, 30)
	if readable = truncate(readable, 63-len(prefix)-len(hash)-2); readable != "" {
		prefix += "-" + readable
	}
	return strings.Trim(prefix, "-") + "-" + hash
}

// SegmentName is the name of the run's sealed journal segment number index: the run's name, a
// hash of its UID (so that a run deleted and created again under the same name never meets
// the old run's segments while the garbage collector removes them) and the index.
func SegmentName(run *workflowsv1alpha1.WorkflowRun, index int32) string {
	return fmt.Sprintf("%s-%s-%05d", truncate(run.Name, 200), shortHash(string(run.UID)), index)
}

// PayloadName is the name of part number part of the result that attempt attempt of the run's
// primitive step stored out of line. Another attempt never collides with an earlier one.
func PayloadName(run *workflowsv1alpha1.WorkflowRun, step string, attempt, part int) string {
	name := fmt.Sprintf("%s-a%d", ChildName(run, step), attempt)
	if part > 0 {
		name += fmt.Sprintf("-%d", part)
	}
	return name
}

// partName is the name of part number part of the payload whose first part is named first.
func partName(first string, part int) string {
	if part == 0 {
		return first
	}
	return fmt.Sprintf("%s-%d", first, part)
}

// RunSelector selects the objects a run owns by their workflows.centaur.dev/run label.
func RunSelector(run *workflowsv1alpha1.WorkflowRun) map[string]string {
	return map[string]string{workflowsv1alpha1.LabelRun: workflowsv1alpha1.LabelValue(run.Name)}
}

// ownerRef makes run the controlling owner of an object, so that the garbage collector deletes
// the object with the run.
func ownerRef(run *workflowsv1alpha1.WorkflowRun) metav1.OwnerReference {
	return *metav1.NewControllerRef(run, workflowsv1alpha1.GroupVersion.WithKind("WorkflowRun"))
}

// ownedBy reports whether obj is controlled by run (this incarnation of it).
func ownedBy(obj metav1.Object, run *workflowsv1alpha1.WorkflowRun) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == run.UID
}

// shortHash is 8 hex characters of the SHA-256 of s.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// truncate cuts s to n bytes and trims dashes at its ends.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) > n {
		s = s[:n]
	}
	return strings.Trim(s, "-")
}
