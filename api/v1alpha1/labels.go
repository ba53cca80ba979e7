package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// LabelPrefix begins every label and annotation key the operator writes.
const LabelPrefix = "workflows.centaur.dev/"

// The label keys the operator writes, all under LabelPrefix. Labels name what
// started or owns an object, so that `kubectl get -l` and the manager's watches can select by
// them; values go through LabelValue.
const (
	// LabelWorkflow names the workflow a run executes, so `kubectl get wfr -l` can filter by it.
	LabelWorkflow = "workflows.centaur.dev/workflow"
	// LabelParentRun names the parent WorkflowRun of a child run.
	LabelParentRun = "workflows.centaur.dev/parent-run"
	// LabelShard names the shard (the manager replica, by its lease) that executes a run or
	// answers an agent turn, under --sharding: written when the run is created (or by the
	// sharder, for a run created without one), and changed only by the sharder when shards
	// come and go. A turn carries its run's shard. See docs/scaling.md.
	LabelShard = "workflows.centaur.dev/shard"
	// LabelDrain asks a run's (or a turn's) shard to hand it over: the shard removes both
	// labels between two executions, and the sharder then assigns the run anew.
	LabelDrain = "workflows.centaur.dev/drain"
	// LabelRun names the WorkflowRun that started an AgentRun, or whose journal a
	// WorkflowRunSegment or WorkflowRunPayload holds.
	LabelRun = "workflows.centaur.dev/run"
	// LabelWebhook names the webhook slug whose delivery started a run, so that
	// `kubectl get wfr -l workflows.centaur.dev/webhook=github-issues` lists an endpoint's runs.
	LabelWebhook = "workflows.centaur.dev/webhook"
	// LabelTriggerKey holds a hash of the trigger key value (for example X-GitHub-Delivery) of
	// the delivery that started a run, when the run is named by its body instead: a delivery
	// whose trigger key was seen answers 200 with that run even when its body differs. Only the
	// manager writes it (config/policy).
	LabelTriggerKey = "workflows.centaur.dev/trigger-key"
	// LabelSchedule names the WorkflowSchedule that started a run, so that
	// `kubectl get wfr -l workflows.centaur.dev/schedule=nightly-report` lists a schedule's runs.
	LabelSchedule = "workflows.centaur.dev/schedule"
	// LabelDeclaredBy marks a WorkflowSchedule that the operator keeps in step with a
	// schedule declared by a workflow's code or file; the value says which kind of source
	// (go, file or definition). The operator deletes such a schedule when its declaration goes.
	LabelDeclaredBy = "workflows.centaur.dev/declared-by"
	// LabelReceipts marks, with the value "true", a WorkflowRunSegment that holds receipts:
	// entries that record an event the run received. The manager watches only those segments
	// to learn who consumed each WorkflowEvent (status.consumedBy), whose runs may have sealed
	// the receipt away from status.journal already.
	LabelReceipts = "workflows.centaur.dev/receipts"
	// LabelRevisionOf marks the ControllerRevisions that hold workflow file revisions; its
	// value is the workflow's name (as a label value).
	LabelRevisionOf = "workflows.centaur.dev/revision-of"
	// LabelRing marks a Lease as a shard of the ring named by its value:
	// kubectl get leases -l workflows.centaur.dev/ring lists the shards.
	LabelRing = "workflows.centaur.dev/ring"
	// LabelDeliveryLedger marks the ConfigMaps of the webhook delivery ledger (package
	// webhookserver/ledger); its value is the page's day (YYYYMMDD, UTC).
	LabelDeliveryLedger = "workflows.centaur.dev/delivery-ledger"
)

// The annotation keys the operator writes, all under workflows.centaur.dev/: what a person
// (or the manager itself) reads about an object, never selected on.
const (
	// AnnotationCrashStrikes counts the deaths of manager processes that a run of a
	// WorkflowDefinition was executing at (package crashguard): 1 for each it may have been a
	// bystander of, 3 for one while it executed alone. At 3 the run fails with reason
	// Quarantined instead of executing. Only the manager writes it (config/policy).
	AnnotationCrashStrikes = "workflows.centaur.dev/crash-strikes"
	// AnnotationTraceparent holds the W3C traceparent a run's trace continues: the context of
	// the webhook delivery or REST call that created it, or the run span of the parent that
	// started it as a child. It is written at create, only when the manager traces (package
	// internal/tracing), and every execution on every replica reads its run's trace from it.
	AnnotationTraceparent = "workflows.centaur.dev/traceparent"
	// AnnotationQuarantinedRevision names a WorkflowDefinition's revision whose run killed the
	// manager's process twice, the second time executing alone (see AnnotationCrashStrikes).
	// The manager sets it, and only the manager may (config/policy); a new source, which makes
	// a new revision, lifts the quarantine.
	AnnotationQuarantinedRevision = "workflows.centaur.dev/quarantined-revision"
	// AnnotationScheduledTime holds the tick a schedule's run belongs to, in RFC 3339 (UTC).
	AnnotationScheduledTime = "workflows.centaur.dev/scheduled-time"
	// AnnotationScheduleTrigger says what started a schedule's run: tick, backfill or manual.
	AnnotationScheduleTrigger = "workflows.centaur.dev/schedule-trigger"
	// AnnotationDeclaredIn says, for people, which workflow or file declares a WorkflowSchedule
	// that the operator keeps for a declared schedule (see LabelDeclaredBy).
	AnnotationDeclaredIn = "workflows.centaur.dev/declared-in"
	// AnnotationIdempotencyKey records the idempotency key a run was started with through the
	// REST API, so that the same request again finds the same run.
	AnnotationIdempotencyKey = "workflows.centaur.dev/idempotency-key"
	// AnnotationAPIKeyID records which API key started a run or sent an event (its id, never
	// the key).
	AnnotationAPIKeyID = "workflows.centaur.dev/api-key-id"
)

// LabelValue fits s into a label value (at most 63 characters): as it is when it fits,
// otherwise truncated and kept unique with a hash. Every writer of the operator's labels
// (workflow, parent run, schedule) uses it, so a selector built from a name finds what the
// writers labelled.
func LabelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.Trim(s[:54], "-_.") + "-" + hex.EncodeToString(sum[:])[:8]
}
