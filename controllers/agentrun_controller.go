package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/centaur-dev/workflow-operator/agents"
	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/sharding/placement"
)

// Defaults of the AgentRun controller.
const (
	// DefaultAgentConcurrency is how many turns the manager answers in parallel.
	DefaultAgentConcurrency = 4
	// DefaultAgentsConfig is the ConfigMap that configures the agents, as "namespace/name".
	DefaultAgentsConfig = "centaur-system/centaur-agents"
	// recordTimeout bounds the writes that record a reply, which go on during a shutdown.
	recordTimeout = 10 * time.Second
	// maxAgentResultBytes bounds a reply kept in an AgentRun's status, well under etcd's
	// request limit (the thread's history is sent again with every later turn anyway).
	maxAgentResultBytes = 512 << 10
)

// AgentOptions configure the AgentRun controller.
type AgentOptions struct {
	// ConfigMap names the ConfigMap whose data key agents.yaml chooses each agent's backend.
	// API keys are read from Secrets in its namespace. Empty: DefaultAgentsConfig.
	ConfigMap types.NamespacedName
	// Concurrency is how many turns are answered in parallel. Default 4.
	Concurrency int
	// ConfigTTL is how long the configuration read for one turn is reused for the next.
	// Default agents.DefaultConfigTTL.
	ConfigTTL time.Duration
	// RecordGrace is how long a turn may wait for its run to record it before it counts as made
	// by hand. Default DefaultRecordGrace.
	RecordGrace time.Duration
}

// ParseAgentsConfig reads the --agents-config flag, "namespace/name".
func ParseAgentsConfig(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q is not namespace/name, e.g. %s", s, DefaultAgentsConfig)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// AgentRunReconciler answers AgentRuns with the backend configured for their agent: it claims a
// turn (phase Running, a status write guarded by resourceVersion), sends the turn with its
// thread's history, and records the reply or the failure. Turns of agents with no built-in
// backend are left Pending, with a message saying so, for an external agent runtime to
// complete by writing their status.
//
// Restarts: a turn found Running that this process did not claim was claimed by a manager that
// stopped mid-call (only the elected leader reconciles, or under sharding the shard of the
// turn's run, which hands a turn over only when it holds no call), and is sent again. A turn
// reaches the model at least once before its reply is recorded, and never again after.
type AgentRunReconciler struct {
	client.Client
	// APIReader reads turns, threads, the configuration and Secrets past the cache, so a
	// decision is never taken on a stale copy.
	APIReader client.Reader
	// Config reads the agents' configuration.
	Config *agents.Loader
	// ConfigMap is where Config reads from; API keys come from Secrets in its namespace.
	ConfigMap types.NamespacedName
	// Events records Kubernetes Events on turns.
	Events recorder.EventRecorder
	// MaxConcurrentReconciles is how many turns are answered in parallel.
	MaxConcurrentReconciles int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// RecordGrace is how long a turn whose run has not recorded it yet may wait for the
	// record before it counts as made by hand (DefaultRecordGrace when zero): the engine
	// creates a turn, then writes its record.
	RecordGrace time.Duration

	mu sync.Mutex
	// claims holds the turns this process claimed and has not recorded yet.
	claims map[types.UID]*claim
	// shards is this replica's part in the ring; nil in single-leader mode.
	shards *placement.Sharding
}

// claim is a turn this process took: when, and the status to record once the backend
// answered, with how long the backend took.
type claim struct {
	startedAt metav1.Time
	outcome   *workflowsv1alpha1.AgentRunStatus
	took      time.Duration
}

// turnPlan is how a turn will be answered, decided from the configuration.
type turnPlan struct {
	agent   string
	backend string
	// waiting, when set, says what the turn waits for: an external agent runtime.
	waiting string
	// failure, when set, is why the turn cannot be answered at all.
	failure *workflowsv1alpha1.RunError
	client  agents.Backend
	request agents.Request
	where   string
}

// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=agentruns,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=workflows.centaur.dev,resources=agentruns/status,verbs=get;update;patch
// The agents' ConfigMap and their API keys' Secrets are read in the ConfigMap's namespace
// through the ClusterRole centaur-secret-reader, bound there (config/rbac), not cluster-wide.
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile answers one turn: read it fresh, record a reply this process still holds, leave
// finished turns and turns an external runtime works on alone, decide how to answer it, and
// then wait for an external runtime, fail it, or ask the backend.
func (r *AgentRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	turn := &workflowsv1alpha1.AgentRun{}
	if err := r.APIReader.Get(ctx, req.NamespacedName, turn); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !turn.DeletionTimestamp.IsZero() || turn.Status.Phase.IsFinal() {
		r.forget(turn.UID)
		return ctrl.Result{}, nil
	}
	if held, ok := r.claimOf(turn.UID); ok {
		return ctrl.Result{}, r.record(ctx, turn, held)
	}
	if turn.Status.Phase == workflowsv1alpha1.AgentRunning && turn.Status.Backend != agents.BackendOpenAI {
		return ctrl.Result{}, nil // an external agent runtime took it
	}
	plan, err := r.plan(ctx, turn)
	if errors.Is(err, errNotRecordedYet) {
		return ctrl.Result{RequeueAfter: recordPoll}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case plan.waiting != "":
		err = r.wait(ctx, turn, plan)
	case plan.failure != nil:
		err = r.failEarly(ctx, turn, plan)
	default:
		err = r.answer(ctx, turn, plan)
	}
	return requeueOnConflict(err)
}

// plan decides from the configuration how the turn is answered. An error means something
// could not be read and the turn is tried again later; a turn that cannot be answered gets a
// plan with a failure.
func (r *AgentRunReconciler) plan(ctx context.Context, turn *workflowsv1alpha1.AgentRun) (turnPlan, error) {
	plan := turnPlan{agent: agents.AgentName(turn.Spec.Agent), backend: agents.BackendOpenAI}
	snap, err := r.Config.Load(ctx)
	if err != nil {
		return plan, err
	}
	if snap.Invalid != nil {
		plan.failure = &workflowsv1alpha1.RunError{Reason: workflowsv1alpha1.ReasonConfigInvalid,
			Message: fmt.Sprintf("the agents' configuration (key %s of ConfigMap %s) is invalid: %v", agents.ConfigKey, r.ConfigMap, snap.Invalid)}
		return plan, nil
	}
	agent, ok := snap.Config.Lookup(turn.Spec.Agent)
	switch {
	case !ok:
		plan.backend = agents.BackendExternal
		plan.waiting = fmt.Sprintf("no backend is configured for agent %q; waiting for an external agent to write this AgentRun's status (see docs/agents.md)", plan.agent)
		return plan, nil
	case agent.Backend == agents.BackendExternal:
		plan.backend = agents.BackendExternal
		plan.waiting = fmt.Sprintf("agent %q is answered by an external agent runtime; waiting for it to write this AgentRun's status (see docs/agents.md)", plan.agent)
		return plan, nil
	}
	if failure, err := r.checkPolicy(ctx, turn, plan.agent, agent); err != nil || failure != nil {
		plan.failure = failure
		return plan, err
	}
	return r.planOpenAI(ctx, turn, plan, agent)
}

// checkPolicy refuses the turns the agent's policy does not answer with the operator's key:
// a model the agent does not allow, or a turn no running WorkflowRun made, from a namespace not
// in standaloneNamespaces. A turn whose run has not recorded it yet is tried again until
// RecordGrace passed (errNotRecordedYet). An error means the owner could not be read.
func (r *AgentRunReconciler) checkPolicy(ctx context.Context, turn *workflowsv1alpha1.AgentRun, name string, agent agents.Agent) (*workflowsv1alpha1.RunError, error) {
	if !agent.AllowsModel(turn.Spec.Model) {
		return &workflowsv1alpha1.RunError{Reason: workflowsv1alpha1.ReasonNotAllowed, Message: fmt.Sprintf(
			"agent %q does not allow model %q; the operator may add it to the agent's models in %s of ConfigMap %s",
			name, turn.Spec.Model, agents.ConfigKey, r.ConfigMap)}, nil
	}
	if agent.AllowsStandalone(turn.Namespace) {
		return nil, nil
	}
	run, recorded, err := r.recordingRun(ctx, turn)
	switch {
	case err != nil:
		return nil, err
	case run != nil && !run.Status.Phase.IsFinal() && recorded:
		return nil, nil
	case run != nil && !run.Status.Phase.IsFinal() && r.now().Sub(turn.CreationTimestamp.Time) < r.recordGrace():
		return nil, errNotRecordedYet
	}
	return &workflowsv1alpha1.RunError{Reason: workflowsv1alpha1.ReasonNotAllowed, Message: fmt.Sprintf(
		"agent %q answers only the turns that running workflow runs start (recorded in the run's journal); this AgentRun is not one. "+
			"The operator may list namespace %s in the agent's standaloneNamespaces (%s of ConfigMap %s)",
		name, turn.Namespace, agents.ConfigKey, r.ConfigMap)}, nil
}

// DefaultRecordGrace is how long a turn may wait for its run to record it; recordPoll is how
// often it looks again meanwhile.
const (
	DefaultRecordGrace = 10 * time.Second
	recordPoll         = 200 * time.Millisecond
)

func (r *AgentRunReconciler) recordGrace() time.Duration {
	if r.RecordGrace > 0 {
		return r.RecordGrace
	}
	return DefaultRecordGrace
}

// errNotRecordedYet has a turn tried again after recordPoll: its run exists and runs, but its
// journal does not record the turn yet.
var errNotRecordedYet = errors.New("the turn's run has not recorded the turn yet")

// recordingRun returns the WorkflowRun the turn names as its controlling owner, when it
// exists with the UID the reference names, and whether that run's journal records the turn (an
// Agent entry that refers to it): what the engine wrote when it made the turn. An
// ownerReference is any editor's to write; a run's journal only the manager's.
func (r *AgentRunReconciler) recordingRun(ctx context.Context, turn *workflowsv1alpha1.AgentRun) (*workflowsv1alpha1.WorkflowRun, bool, error) {
	ref := metav1.GetControllerOf(turn)
	if ref == nil || ref.Kind != "WorkflowRun" || ref.APIVersion != workflowsv1alpha1.GroupVersion.String() {
		return nil, false, nil
	}
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: turn.Namespace, Name: ref.Name}, run); err != nil {
		return nil, false, client.IgnoreNotFound(err)
	}
	if run.UID != ref.UID {
		return nil, false, nil
	}
	recorded, err := runstore.RecordsRef(ctx, r.APIReader, run, workflowsv1alpha1.EntryKindAgent, turn.Name)
	if errors.Is(err, runstore.ErrLost) {
		return run, false, nil
	}
	return run, recorded, err
}

// planOpenAI completes the plan of a turn for an OpenAI-compatible agent: its API key, the
// turn's parameters over the agent's defaults, and the thread's history.
func (r *AgentRunReconciler) planOpenAI(ctx context.Context, turn *workflowsv1alpha1.AgentRun, plan turnPlan, agent agents.Agent) (turnPlan, error) {
	key, failure, err := r.apiKey(ctx, plan.agent, agent)
	if err != nil || failure != nil {
		plan.failure = failure
		return plan, err
	}
	req := agents.Request{
		Model:        firstNonEmpty(turn.Spec.Model, agent.Model),
		Instructions: joinInstructions(agent.Instructions, turn.Spec.Instructions),
		Prompt:       turn.Spec.Prompt,
		Temperature:  ceiling(turn.Spec.Temperature, agent.Temperature),
		MaxTokens:    int(ceilingInt(int64(turn.Spec.MaxTokens), int64(agent.MaxTokens))),
	}
	if req.Model == "" {
		plan.failure = &workflowsv1alpha1.RunError{Reason: workflowsv1alpha1.ReasonConfigInvalid,
			Message: fmt.Sprintf("agent %q names no model: set model in %s of ConfigMap %s, or spec.model on the turn", plan.agent, agents.ConfigKey, r.ConfigMap)}
		return plan, nil
	}
	if req.History, err = r.history(ctx, turn, agent); err != nil {
		return plan, err
	}
	plan.request, plan.client = req, agent.NewOpenAI(key)
	plan.where = fmt.Sprintf("model %s at %s", req.Model, agent.Endpoint())
	return plan, nil
}

// apiKey reads the agent's API key from its Secret, in the ConfigMap's namespace, which the
// manager reads Secrets in (RBAC binds centaur-secret-reader there). A Secret or key that is
// missing, or that the manager may not read, is a failure of the turn; any other read error is
// returned.
func (r *AgentRunReconciler) apiKey(ctx context.Context, name string, agent agents.Agent) (string, *workflowsv1alpha1.RunError, error) {
	ref := agent.APIKeySecretRef
	if ref == nil {
		return "", nil, nil
	}
	scope := SecretScope{r.ConfigMap.Namespace}
	values, problem, err := scope.readSecret(ctx, r.APIReader, secretRef{
		secret: types.NamespacedName{Namespace: r.ConfigMap.Namespace, Name: ref.Name},
		keys:   []string{ref.Key},
		field:  name + ".apiKeySecretRef",
		value:  "API key",
	})
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("read the API key of agent %q: %w", name, err)
	case problem != nil:
		return "", &workflowsv1alpha1.RunError{Reason: problem.reason, Message: problem.message}, nil
	}
	return string(values[0]), nil, nil
}

// history returns the earlier turns of the turn's thread as messages, oldest first, each as the
// user's prompt and the assistant's reply. Earlier turns are the turns of the same threadKey in
// the turn's namespace that succeeded, were not created after it, and that a workflow run made
// (its journal records them), so that a turn made by hand cannot speak into a workflow's
// conversation; in a namespace whose hand-made turns the agent answers
// (standaloneNamespaces), those count too. Creation times have a
// resolution of one second, so a turn created in the same second as this one counts as earlier
// when it has already succeeded; turns are ordered by creation time, then by when they
// finished, then by name.
func (r *AgentRunReconciler) history(ctx context.Context, turn *workflowsv1alpha1.AgentRun, agent agents.Agent) ([]agents.Message, error) {
	if turn.Spec.ThreadKey == "" {
		return nil, nil
	}
	var thread workflowsv1alpha1.AgentRunList
	err := r.APIReader.List(ctx, &thread, client.InNamespace(turn.Namespace),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.threadKey", turn.Spec.ThreadKey)})
	if err != nil {
		return nil, fmt.Errorf("list the turns of thread %q: %w", turn.Spec.ThreadKey, err)
	}
	earlier := slices.DeleteFunc(thread.Items, func(t workflowsv1alpha1.AgentRun) bool {
		return t.UID == turn.UID || t.Status.Phase != workflowsv1alpha1.AgentSucceeded || t.CreationTimestamp.After(turn.CreationTimestamp.Time)
	})
	if !agent.AllowsStandalone(turn.Namespace) {
		if earlier, err = r.madeByRuns(ctx, earlier); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(earlier, func(a, b workflowsv1alpha1.AgentRun) int { return compareTurns(&a, &b) })
	msgs := make([]agents.Message, 0, 2*len(earlier))
	for _, t := range earlier {
		msgs = append(msgs, agents.Message{Role: agents.RoleUser, Content: t.Spec.Prompt},
			agents.Message{Role: agents.RoleAssistant, Content: t.Status.Result})
	}
	return msgs, nil
}

// madeByRuns keeps the turns whose runs' journals record them.
func (r *AgentRunReconciler) madeByRuns(ctx context.Context, turns []workflowsv1alpha1.AgentRun) ([]workflowsv1alpha1.AgentRun, error) {
	out := turns[:0]
	for i := range turns {
		_, recorded, err := r.recordingRun(ctx, &turns[i])
		if err != nil {
			return nil, err
		}
		if recorded {
			out = append(out, turns[i])
		}
	}
	return out, nil
}

// joinInstructions puts a turn's instructions after the agent's, so that the operator's
// instructions always reach the model.
func joinInstructions(agent, turn string) string {
	switch {
	case agent == "":
		return turn
	case turn == "" || turn == agent:
		return agent
	}
	return agent + "\n\n" + turn
}

// ceiling is the turn's value capped by the agent's: the agent's setting is both the default
// and the most a turn may ask for.
func ceiling(turn, agent *float64) *float64 {
	if turn == nil || agent != nil && *turn > *agent {
		return agent
	}
	return turn
}

// ceilingInt is ceiling for counts, where zero means unset.
func ceilingInt(turn, agent int64) int64 {
	if turn <= 0 || agent > 0 && turn > agent {
		return agent
	}
	return turn
}

// compareTurns orders turns by creation time, then finish time, then name.
func compareTurns(a, b *workflowsv1alpha1.AgentRun) int {
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	if c := finishTime(a).Compare(finishTime(b)); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

func finishTime(t *workflowsv1alpha1.AgentRun) time.Time {
	if t.Status.FinishedAt == nil {
		return time.Time{}
	}
	return t.Status.FinishedAt.Time
}

// wait leaves the turn to an external agent runtime: phase Pending, backend external and a
// message saying what it waits for.
func (r *AgentRunReconciler) wait(ctx context.Context, turn *workflowsv1alpha1.AgentRun, plan turnPlan) error {
	status := *turn.Status.DeepCopy()
	status.Phase, status.Backend, status.Message = workflowsv1alpha1.AgentPending, agents.BackendExternal, plan.waiting
	changed, err := r.writeStatus(ctx, turn, status)
	if err != nil || !changed {
		return wrapErr(err, "record that the turn waits for an external agent")
	}
	r.event(turn, corev1.EventTypeNormal, workflowsv1alpha1.ReasonWaiting, "Wait", "%s", plan.waiting)
	return nil
}

// failEarly fails a turn that cannot be answered (invalid configuration, missing Secret),
// before any call.
func (r *AgentRunReconciler) failEarly(ctx context.Context, turn *workflowsv1alpha1.AgentRun, plan turnPlan) error {
	status := *turn.Status.DeepCopy()
	now := metav1.NewTime(r.now()).Rfc3339Copy()
	status.Phase, status.Backend, status.Error = workflowsv1alpha1.AgentFailed, plan.backend, plan.failure
	status.Message, status.FinishedAt = plan.failure.Message, &now
	if _, err := r.writeStatus(ctx, turn, status); err != nil {
		return wrapErr(err, "record the turn's failure")
	}
	r.finished(ctx, turn, plan.agent, 0)
	return nil
}

// answer claims the turn, asks the backend and records the outcome. A conflict on the claim
// means someone else took or changed the turn: it is read again before anything else happens.
func (r *AgentRunReconciler) answer(ctx context.Context, turn *workflowsv1alpha1.AgentRun, plan turnPlan) error {
	orphaned := turn.Status.Phase == workflowsv1alpha1.AgentRunning
	claimed := r.now()
	started := metav1.NewTime(claimed).Rfc3339Copy()
	status := workflowsv1alpha1.AgentRunStatus{Phase: workflowsv1alpha1.AgentRunning, Backend: plan.backend,
		Model: plan.request.Model, StartedAt: &started, Message: "asking " + plan.where}
	if orphaned {
		status.Message += " again: the manager that took this turn stopped before recording the reply"
	}
	if _, err := r.writeStatus(ctx, turn, status); err != nil {
		return wrapErr(err, "claim the turn") // a conflict: another worker or replica took it
	}
	r.hold(turn.UID, &claim{startedAt: started})
	if orphaned {
		r.event(turn, corev1.EventTypeWarning, workflowsv1alpha1.ReasonRetrying, "Answer", "%s", status.Message)
	} else {
		r.event(turn, corev1.EventTypeNormal, workflowsv1alpha1.ReasonStarted, "Answer", "%s", status.Message)
	}

	resp, err := plan.client.Complete(ctx, plan.request)
	if err != nil && ctx.Err() != nil {
		r.forget(turn.UID)
		log.FromContext(ctx).Info("stopped while the backend answered; the next manager asks again", "agent", plan.agent)
		return nil
	}
	held := &claim{startedAt: started, outcome: outcomeStatus(status, resp, err, r.now()), took: r.now().Sub(claimed)}
	r.hold(turn.UID, held)
	// A reply in hand is recorded even when the manager is stopping meanwhile.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return r.record(recordCtx, turn, held)
}

// outcomeStatus is the final status of a claimed turn after the backend answered.
func outcomeStatus(claimed workflowsv1alpha1.AgentRunStatus, resp agents.Response, err error, now time.Time) *workflowsv1alpha1.AgentRunStatus {
	out := claimed.DeepCopy()
	finished := metav1.NewTime(now).Rfc3339Copy()
	out.FinishedAt = &finished
	if err == nil && len(resp.Text) > maxAgentResultBytes {
		err = &agents.Error{Reason: workflowsv1alpha1.ReasonResultTooLarge, Attempts: resp.Attempts,
			Message: fmt.Sprintf("the reply is %d bytes; an AgentRun keeps at most %d: ask for a shorter answer (maxTokens)", len(resp.Text), maxAgentResultBytes)}
	}
	if err != nil {
		var be *agents.Error
		if !errors.As(err, &be) {
			be = &agents.Error{Reason: workflowsv1alpha1.ReasonBackendError, Message: err.Error()}
		}
		out.Phase, out.Attempts = workflowsv1alpha1.AgentFailed, int32(be.Attempts)
		message := statusText(be.Message)
		out.Error = &workflowsv1alpha1.RunError{Reason: be.Reason, Message: message}
		out.Message = message
		return out
	}
	out.Phase, out.Result, out.Attempts = workflowsv1alpha1.AgentSucceeded, resp.Text, int32(resp.Attempts)
	out.Model = firstNonEmpty(resp.Model, out.Model)
	out.Usage = &workflowsv1alpha1.TokenUsage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens, TotalTokens: resp.Usage.TotalTokens}
	out.Message = fmt.Sprintf("answered by %s in %d attempt(s)", out.Model, resp.Attempts)
	return out
}

// record writes the outcome this process holds for a turn it claimed. On a conflict it reads
// the turn again and writes once more while the turn is still its claim; when someone else
// finished or re-claimed the turn, the outcome is dropped. Any other error keeps the outcome
// held, and the turn is requeued to record it: the backend is not asked again.
func (r *AgentRunReconciler) record(ctx context.Context, turn *workflowsv1alpha1.AgentRun, held *claim) error {
	if held.outcome == nil {
		return nil // still asking; only a shutdown leaves a claim without an outcome
	}
	for range 5 {
		if !claimedBy(turn, held) {
			r.forget(turn.UID)
			log.FromContext(ctx).Info("the turn was finished or taken by someone else; dropping this process's reply", "phase", turn.Status.Phase)
			return nil
		}
		_, err := r.writeStatus(ctx, turn, *held.outcome)
		if err == nil || apierrors.IsNotFound(err) {
			r.forget(turn.UID)
			if err == nil {
				r.finished(ctx, turn, agents.AgentName(turn.Spec.Agent), held.took)
			}
			return nil
		}
		if !apierrors.IsConflict(err) {
			return fmt.Errorf("record the turn's outcome: %w", err)
		}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(turn), turn); err != nil {
			if apierrors.IsNotFound(err) {
				r.forget(turn.UID)
				return nil
			}
			return fmt.Errorf("read the turn again after a conflict: %w", err)
		}
	}
	return errors.New("record the turn's outcome: the turn kept changing; trying again")
}

// claimedBy reports whether turn is still the claim held: Running since the claim's start.
func claimedBy(turn *workflowsv1alpha1.AgentRun, held *claim) bool {
	s := turn.Status
	return s.Phase == workflowsv1alpha1.AgentRunning && s.StartedAt != nil && s.StartedAt.Equal(&held.startedAt)
}

// writeStatus is the one place that writes a turn's status: one write guarded by the turn's
// resourceVersion (patchStatus), skipped when nothing changes. It reports whether it wrote;
// on success turn holds the API server's copy. Callers record Events and metrics only then.
func (r *AgentRunReconciler) writeStatus(ctx context.Context, turn *workflowsv1alpha1.AgentRun, status workflowsv1alpha1.AgentRunStatus) (bool, error) {
	updated := turn.DeepCopy()
	updated.Status = status
	written, err := patchStatus(ctx, r.Client, turn, updated)
	if written {
		*turn = *updated
	}
	return written, err
}

// finished records the log line, Event and metrics of a turn whose final phase was just
// written; call is how long the backend took to answer (zero: the turn failed before a call).
func (r *AgentRunReconciler) finished(ctx context.Context, turn *workflowsv1alpha1.AgentRun, agent string, call time.Duration) {
	s := turn.Status
	agentTurnsFinished.WithLabelValues(agent, string(s.Phase)).Inc()
	if call > 0 {
		agentTurnDuration.WithLabelValues(agent).Observe(call.Seconds())
	}
	logger := log.FromContext(ctx).WithValues("agent", agent, "phase", s.Phase, "attempts", s.Attempts)
	if s.Phase == workflowsv1alpha1.AgentSucceeded {
		if u := s.Usage; u != nil {
			agentTokens.WithLabelValues(agent, "prompt").Add(float64(u.PromptTokens))
			agentTokens.WithLabelValues(agent, "completion").Add(float64(u.CompletionTokens))
			logger = logger.WithValues("model", s.Model, "totalTokens", u.TotalTokens)
		}
		logger.Info("agent_turn_finished")
		r.event(turn, corev1.EventTypeNormal, workflowsv1alpha1.ReasonSucceeded, "Answer", "%s", s.Message)
		return
	}
	reason := ""
	if s.Error != nil {
		reason = s.Error.Reason
	}
	logger.Info("agent_turn_finished", "reason", reason, "message", logText(s.Message))
	r.event(turn, corev1.EventTypeWarning, workflowsv1alpha1.ReasonFailed, "Answer", "%s after %d attempt(s): %s", reason, s.Attempts, s.Message)
}

func (r *AgentRunReconciler) event(turn *workflowsv1alpha1.AgentRun, eventType, reason, action, note string, args ...any) {
	emit(r.Events, turn, eventType, reason, action, note, args...)
}

func (r *AgentRunReconciler) now() time.Time { return now(r.Clock) }

// hold, claimOf and forget keep the claims of this process.
func (r *AgentRunReconciler) hold(uid types.UID, c *claim) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claims == nil {
		r.claims = map[types.UID]*claim{}
	}
	r.claims[uid] = c
}

func (r *AgentRunReconciler) claimOf(uid types.UID) (*claim, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.claims[uid]
	return c, ok
}

func (r *AgentRunReconciler) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.claims, uid)
}

// wrapErr says what was being done when err happened; nil stays nil.
func wrapErr(err error, doing string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// SetupWithManager registers the reconciler. Turns are reconciled when created, when their spec
// or phase changes while unfinished, and whenever the agents' ConfigMap changes (turns waiting
// for an external agent may now have a backend). The ConfigMap is watched through a cache of
// its own that holds that one object, not every ConfigMap of the cluster. Under sharding every
// replica answers the turns of its shard (a turn carries its run's shard) and hands a turn
// over, when the sharder drains it, once it holds no reply to record.
func (r *AgentRunReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Config == nil || r.APIReader == nil || r.ConfigMap.Name == "" || r.ConfigMap.Namespace == "" {
		return errors.New("the AgentRun controller needs Config, APIReader and ConfigMap")
	}
	configs, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		DefaultNamespaces: map[string]cache.Config{r.ConfigMap.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Field: fields.OneTermEqualSelector("metadata.name", r.ConfigMap.Name)},
		},
	})
	if err != nil {
		return fmt.Errorf("make the cache of the agents' ConfigMap: %w", err)
	}
	var runnable interface{ Start(context.Context) error } = configs
	if r.shards != nil {
		runnable = placement.ReplicaCache{Cache: configs} // every shard answers turns
	}
	if err := mgr.Add(runnable); err != nil {
		return fmt.Errorf("add the cache of the agents' ConfigMap: %w", err)
	}
	holding := func(o client.Object) bool { _, held := r.claimOf(o.GetUID()); return held }
	return ctrl.NewControllerManagedBy(mgr).
		For(&workflowsv1alpha1.AgentRun{}, builder.WithPredicates(r.shards.Admit(unfinishedTurnPredicate()))).
		WatchesRawSource(source.Kind(configs, client.Object(&corev1.ConfigMap{}), handler.EnqueueRequestsFromMapFunc(r.turnsAwaitingConfig))).
		Named("agentrun").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentReconciles, 1), NeedLeaderElection: r.shards.EveryReplica()}).
		Complete(r.shards.Gate("turn", mgr.GetClient(), r.APIReader, func() client.Object { return &workflowsv1alpha1.AgentRun{} }, nil, holding, r))
}

// turnsAwaitingConfig drops the cached configuration and maps a change of the ConfigMap to
// every unfinished turn nobody is answering.
func (r *AgentRunReconciler) turnsAwaitingConfig(ctx context.Context, _ client.Object) []reconcile.Request {
	r.Config.Invalidate()
	var turns workflowsv1alpha1.AgentRunList
	if err := r.List(ctx, &turns); err != nil {
		log.FromContext(ctx).Error(err, "list the turns to check against the new agents' configuration")
		return nil
	}
	var reqs []reconcile.Request
	for i := range turns.Items {
		if s := turns.Items[i].Status; !s.Phase.IsFinal() && s.Phase != workflowsv1alpha1.AgentRunning {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&turns.Items[i])})
		}
	}
	return reqs
}

// unfinishedTurnPredicate passes turns that are not finished, on creation (and at start-up) and
// when their spec or phase changed; a finished turn has nothing left to answer.
func unfinishedTurnPredicate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !agentFinished(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if agentFinished(e.ObjectNew) {
				return false
			}
			oldTurn, okOld := e.ObjectOld.(*workflowsv1alpha1.AgentRun)
			newTurn, okNew := e.ObjectNew.(*workflowsv1alpha1.AgentRun)
			return okOld && okNew && (oldTurn.Generation != newTurn.Generation || oldTurn.Status.Phase != newTurn.Status.Phase)
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return true },
	}
}

// agentProgressPredicate passes an owned turn's events to the run that waits for it: when the
// turn finished, and when its phase or message changed while unfinished, so that the run's
// status.waitingFor says what the turn waits for (an external agent, a model) without polling.
func agentProgressPredicate() predicate.Funcs {
	p := finishedPredicate(agentFinished)
	p.UpdateFunc = func(e event.UpdateEvent) bool {
		oldTurn, okOld := e.ObjectOld.(*workflowsv1alpha1.AgentRun)
		newTurn, okNew := e.ObjectNew.(*workflowsv1alpha1.AgentRun)
		if !okOld || !okNew {
			return false
		}
		if newTurn.Status.Phase.IsFinal() {
			return !oldTurn.Status.Phase.IsFinal()
		}
		return oldTurn.Status.Phase != newTurn.Status.Phase || oldTurn.Status.Message != newTurn.Status.Message
	}
	return p
}

// setupAgents registers the AgentRun controller with the options' defaults filled in.
func setupAgents(mgr ctrl.Manager, o AgentOptions, shards *placement.Sharding) (*AgentRunReconciler, error) {
	if o.ConfigMap.Name == "" {
		key, err := ParseAgentsConfig(DefaultAgentsConfig)
		if err != nil {
			return nil, err
		}
		o.ConfigMap = key
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultAgentConcurrency
	}
	reader := mgr.GetAPIReader()
	r := &AgentRunReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               reader,
		Config:                  agents.NewLoader(configMapSource(reader, o.ConfigMap), o.ConfigTTL),
		ConfigMap:               o.ConfigMap,
		Events:                  mgr.GetEventRecorder("agentrun-controller"),
		MaxConcurrentReconciles: o.Concurrency,
		RecordGrace:             o.RecordGrace,
		shards:                  shards,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("set up the AgentRun controller: %w", err)
	}
	return r, nil
}

// configMapSource reads the agents' configuration from key's data key agents.yaml, past the
// cache. A missing ConfigMap is not found; a ConfigMap without the key configures no agent.
func configMapSource(reader client.Reader, key types.NamespacedName) agents.Source {
	return func(ctx context.Context) ([]byte, bool, error) {
		cm := &corev1.ConfigMap{}
		if err := reader.Get(ctx, key, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("read ConfigMap %s: %w", key, err)
		}
		return []byte(cm.Data[agents.ConfigKey]), true, nil
	}
}
