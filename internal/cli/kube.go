package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/runstore"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// cliFieldOwner is the field manager of the CLI's changes to objects in kubeconfig mode.
const cliFieldOwner = "centaur-cli"

// kubeFlags choose the kubeconfig and context of kubeconfig mode, as kubectl's flags do.
type kubeFlags struct {
	kubeconfig, context string
}

// bind declares --kubeconfig and --context on fs; when says when they apply, for the help.
func (f *kubeFlags) bind(fs *flag.FlagSet, when string) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", when+"the kubeconfig file (default $KUBECONFIG, else ~/.kube/config).")
	fs.StringVar(&f.context, "context", "", when+"the kubeconfig context (default its current context).")
}

// loader loads the kubeconfig as kubectl does: --kubeconfig, else $KUBECONFIG, else
// ~/.kube/config, and in a pod its service account.
func (f kubeFlags) loader() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
}

// present reports whether a kubeconfig can be loaded, so that a cluster command without an
// API URL knows whether it can work on the objects instead.
func (f kubeFlags) present() bool {
	_, err := f.loader().ClientConfig()
	return err == nil
}

// connect returns a client of the kubeconfig's cluster that knows the API's kinds, and the
// namespace to work in: namespace when not empty, else the context's (default when it names
// none).
func (f kubeFlags) connect(namespace string) (client.Client, string, error) {
	loader := f.loader()
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load the kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	if namespace == "" {
		if namespace, _, err = loader.Namespace(); err != nil {
			return nil, "", fmt.Errorf("read the kubeconfig context's namespace: %w", err)
		}
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", fmt.Errorf("register Kubernetes' kinds: %w", err)
	}
	if err := workflowsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", fmt.Errorf("register the workflow kinds: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("connect to the cluster of the kubeconfig (%s): %w", cfg.Host, err)
	}
	return c, namespace, nil
}

// errNeedsAPI is what kubeconfig mode answers for what only the manager knows: its catalog of
// workflows, and the start of a schedule's run the way the schedule starts it.
type errNeedsAPI string

func (e errNeedsAPI) Error() string {
	return string(e) + " needs the REST API: set " + EnvAPIURL + " and " + EnvAPIKey + " (or pass --api-url and --api-key); with only a kubeconfig, start, runs, journal, events send and schedules list, pause and resume work on the objects"
}

// kubeCluster drives an installation through the Kubernetes API with a kubeconfig, for people
// who have one and no API key: it creates and changes the objects the REST API would (the
// same NewRun, NewEvent and patches) and shows them through the same views, so the output of
// each command is the same in both modes. Kubernetes RBAC decides what it may do.
type kubeCluster struct {
	c         client.Client
	namespace string
}

// newKubeCluster connects with the kubeconfig, in namespace (empty: the context's).
func newKubeCluster(f kubeFlags, namespace string) (*kubeCluster, error) {
	c, ns, err := f.connect(namespace)
	if err != nil {
		return nil, err
	}
	return &kubeCluster{c: c, namespace: ns}, nil
}

// ns is the namespace of a request: the request's own, else the cluster's.
func (k *kubeCluster) ns(requested string) string {
	if requested != "" {
		return requested
	}
	return k.namespace
}

// StartRun creates the WorkflowRun the REST API would create, named as it names runs (from
// the idempotency key when there is one, so that a repeated start finds the first run).
func (k *kubeCluster) StartRun(ctx context.Context, req restapi.StartRunRequest) (restapi.RunDetail, error) {
	if req.EagerStart {
		return restapi.RunDetail{}, errNeedsAPI("--eager (running the first segment in the API server)")
	}
	run, _, err := restapi.CreateRun(ctx, k.c, k.c, restapi.NewRun(k.ns(req.Namespace), req, ""), req)
	if err != nil {
		return restapi.RunDetail{}, kubeError(err)
	}
	return k.detail(ctx, run, stepsPage{})
}

// GetRun reads the run and a page of its whole journal, sealed segments included.
func (k *kubeCluster) GetRun(ctx context.Context, namespace, id string, page stepsPage) (restapi.RunDetail, error) {
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: k.ns(namespace), Name: id}, run); err != nil {
		return restapi.RunDetail{}, kubeError(fmt.Errorf("read run %s/%s: %w", k.ns(namespace), id, err))
	}
	return k.detail(ctx, run, page)
}

// detail is run with a page of its steps, as the REST API shows it, without URLs (there is
// no API to point at).
func (k *kubeCluster) detail(ctx context.Context, run *workflowsv1alpha1.WorkflowRun, page stepsPage) (restapi.RunDetail, error) {
	d, err := restapi.RunDetailOf(ctx, k.c, run, "", runstore.ReadOptions{Limit: page.Limit, Continue: page.Continue, Results: page.Results})
	d.URL = ""
	return d, err
}

// ListRuns lists a page of runs; the workflow filter is a label selector, the phases filter
// applies to the page the API server returned, as the REST API applies them.
func (k *kubeCluster) ListRuns(ctx context.Context, f runFilter) (restapi.RunList, error) {
	phases, err := restapi.ParsePhases(f.Phases)
	if err != nil {
		return restapi.RunList{}, err
	}
	opts := []client.ListOption{client.InNamespace(k.namespace), client.Limit(int64(f.Limit)), client.Continue(f.Continue)}
	if f.Workflow != "" {
		opts = append(opts, client.MatchingLabels{workflowsv1alpha1.LabelWorkflow: workflowsv1alpha1.LabelValue(f.Workflow)})
	}
	list := &workflowsv1alpha1.WorkflowRunList{}
	if err := k.c.List(ctx, list, opts...); err != nil {
		return restapi.RunList{}, kubeError(fmt.Errorf("list runs in %s: %w", k.namespace, err))
	}
	out := restapi.RunList{Runs: []restapi.Run{}, Continue: list.Continue}
	for i := range list.Items {
		v := restapi.RunView(&list.Items[i], "")
		if len(phases) == 0 || phases[v.Status] {
			v.URL = ""
			out.Runs = append(out.Runs, v)
		}
	}
	return out, nil
}

// CancelRun sets spec.cancel, as the REST API does; a run that already finished is left
// alone and said to be.
func (k *kubeCluster) CancelRun(ctx context.Context, id string) (restapi.RunDetail, error) {
	run := &workflowsv1alpha1.WorkflowRun{}
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: k.namespace, Name: id}, run); err != nil {
		return restapi.RunDetail{}, kubeError(fmt.Errorf("read run %s/%s: %w", k.namespace, id, err))
	}
	if _, err := restapi.Cancel(ctx, k.c, run, client.FieldOwner(cliFieldOwner)); err != nil {
		return restapi.RunDetail{}, kubeError(err)
	}
	return k.detail(ctx, run, stepsPage{})
}

// SendEvent creates the WorkflowEvent the REST API would create.
func (k *kubeCluster) SendEvent(ctx context.Context, req restapi.EventRequest) (restapi.Event, error) {
	ev := restapi.NewEvent(k.ns(req.Namespace), req, "")
	if err := k.c.Create(ctx, ev, client.FieldOwner(cliFieldOwner)); err != nil {
		return restapi.Event{}, kubeError(fmt.Errorf("create event %s in %s: %w", req.EventType, ev.Namespace, err))
	}
	return restapi.EventView(ev), nil
}

// Workflows needs the manager's catalog, which only the REST API serves.
func (k *kubeCluster) Workflows(context.Context) (restapi.WorkflowList, error) {
	return restapi.WorkflowList{}, errNeedsAPI("listing workflows")
}

// ListSchedules lists a page of the namespace's WorkflowSchedules.
func (k *kubeCluster) ListSchedules(ctx context.Context, token string) (restapi.ScheduleList, error) {
	list := &workflowsv1alpha1.WorkflowScheduleList{}
	if err := k.c.List(ctx, list, client.InNamespace(k.namespace), client.Limit(100), client.Continue(token)); err != nil {
		return restapi.ScheduleList{}, kubeError(fmt.Errorf("list schedules in %s: %w", k.namespace, err))
	}
	out := restapi.ScheduleList{Schedules: []restapi.Schedule{}, Continue: list.Continue}
	for i := range list.Items {
		out.Schedules = append(out.Schedules, scheduleWithoutURLs(&list.Items[i]))
	}
	return out, nil
}

// TriggerSchedule needs the REST API, which starts the run the way the schedule names and
// records it.
func (k *kubeCluster) TriggerSchedule(context.Context, string) (restapi.RunDetail, error) {
	return restapi.RunDetail{}, errNeedsAPI("triggering a schedule")
}

// PauseSchedule sets spec.suspend and the note, as the REST API does.
func (k *kubeCluster) PauseSchedule(ctx context.Context, name, note string) (restapi.Schedule, error) {
	return k.patchSchedule(ctx, name, restapi.PauseSpec(note))
}

// ResumeSchedule clears spec.suspend and the note, as the REST API does.
func (k *kubeCluster) ResumeSchedule(ctx context.Context, name string) (restapi.Schedule, error) {
	return k.patchSchedule(ctx, name, restapi.ResumeSpec())
}

// patchSchedule merges spec into schedule name's spec and returns the schedule.
func (k *kubeCluster) patchSchedule(ctx context.Context, name string, spec map[string]any) (restapi.Schedule, error) {
	patch, err := json.Marshal(map[string]any{"spec": spec})
	if err != nil {
		return restapi.Schedule{}, kubeError(fmt.Errorf("encode the patch: %w", err))
	}
	ws := &workflowsv1alpha1.WorkflowSchedule{}
	ws.Namespace, ws.Name = k.namespace, name
	if err := k.c.Patch(ctx, ws, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(cliFieldOwner)); err != nil {
		return restapi.Schedule{}, kubeError(fmt.Errorf("change schedule %s/%s: %w", k.namespace, name, err))
	}
	return scheduleWithoutURLs(ws), nil
}

// scheduleWithoutURLs is the schedule as the REST API shows it, without the API's URLs.
func scheduleWithoutURLs(ws *workflowsv1alpha1.WorkflowSchedule) restapi.Schedule {
	v := restapi.ScheduleView(ws, "")
	v.URL, v.RunsURL = "", ""
	return v
}

// kubeCodes are the REST API's codes for the statuses the Kubernetes API answers with.
var kubeCodes = map[int32]string{
	http.StatusBadRequest:          apierror.CodeInvalidRequest,
	http.StatusUnauthorized:        apierror.CodeUnauthorized,
	http.StatusForbidden:           apierror.CodeForbidden,
	http.StatusNotFound:            apierror.CodeNotFound,
	http.StatusConflict:            apierror.CodeConflict,
	http.StatusUnprocessableEntity: apierror.CodeInvalidRequest,
	http.StatusTooManyRequests:     apierror.CodeRateLimited,
	http.StatusServiceUnavailable:  apierror.CodeUnavailable,
}

// kubeError gives an error of the Kubernetes API the REST API's status and code, so that a
// command prints `404 not_found: ...` and a script branches on the same words in both modes;
// an error it has no code for stays as it is.
func kubeError(err error) error {
	var known *apierror.Error
	var status apierrors.APIStatus
	if err == nil || errors.As(err, &known) || !errors.As(err, &status) {
		return err
	}
	code, ok := kubeCodes[status.Status().Code]
	if !ok {
		return err
	}
	return apierror.Errorf(int(status.Status().Code), code, "%s", err.Error())
}
