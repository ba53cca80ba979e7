package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// Environment variables the cluster commands read; their flags override them.
const (
	// EnvAPIURL is the REST API's base URL, such as http://127.0.0.1:8088/api.
	EnvAPIURL = "CENTAUR_API_URL"
	// EnvAPIKey is the API key sent in the X-Api-Key header.
	EnvAPIKey = "CENTAUR_API_KEY"
)

// apiRequestTimeout bounds one call to the REST API.
const apiRequestTimeout = 30 * time.Second

// maxAnswerBytes bounds what the CLI reads of one answer.
const maxAnswerBytes = 64 << 20

// apiNeeds ends the usage of every cluster command.
const apiNeeds = `Works through the REST API: CENTAUR_API_URL (or --api-url) and CENTAUR_API_KEY (or
--api-key). Without an API URL it works on the objects with the kubeconfig (--kubeconfig, else
$KUBECONFIG, else ~/.kube/config), as kubectl would: start, runs, journal, events send and
schedules list, pause and resume; workflows, schedules trigger and start --eager need the API.`

// apiFlags are the flags every cluster command takes.
type apiFlags struct {
	url, key, namespace string
	output              outputFormat
	kube                kubeFlags
}

// bind declares the flags on fs. The URL defaults to $CENTAUR_API_URL; the key is read from
// $CENTAUR_API_KEY only when the command runs, so that --help never prints it.
func (f *apiFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "api-url", os.Getenv(EnvAPIURL), "The REST API's base URL, such as http://127.0.0.1:8088/api (default $"+EnvAPIURL+").")
	fs.StringVar(&f.key, "api-key", "", "The API key, sent as X-Api-Key (default $"+EnvAPIKey+").")
	const nsUsage = "The namespace to act in; empty means the API key's default namespace (with a kubeconfig: its context's)."
	fs.StringVar(&f.namespace, "namespace", "", nsUsage)
	fs.StringVar(&f.namespace, "n", "", "Short for --namespace.")
	f.output = outputTable
	fs.Var(&f.output, "o", "Output format: table, json or yaml.")
	f.kube.bind(fs, "Without an API URL: ")
}

// connect returns the installation the flags point at: the REST API when a URL is given,
// else the cluster of the kubeconfig, else a usageFailure that says how to give either.
func (f apiFlags) connect() (cluster, error) {
	if f.url != "" || !f.kube.present() {
		return newAPIClient(f)
	}
	return newKubeCluster(f.kube, f.namespace)
}

// usageFailure is a command-line mistake found after the flags parsed: the command prints it
// with its usage hint and exits ExitUsage.
type usageFailure string

// Error is the mistake, saying what to type instead.
func (u usageFailure) Error() string { return string(u) }

// session is what a cluster command works with: where it writes, the installation it drives
// and the output format -o chose.
type session struct {
	*env
	cl  cluster
	out outputFormat
}

// show writes v as -o says: its JSON or YAML, or for table what table writes.
func (s *session) show(v any, table func(w io.Writer)) error {
	return s.out.show(s.stdout, v, table)
}

// apiCommand makes c a cluster command. Its flags are the cluster flags (--api-url, --api-key,
// --namespace, -o) and, when bind is not nil, its own, bound on a fresh O. run gets a session
// on the REST API; an error it returns is printed after the command's name and exits
// ExitFailed, a usageFailure exits ExitUsage.
func apiCommand[O any](c command, bind func(fs *flag.FlagSet, o *O), run func(ctx context.Context, s *session, o *O, args []string) error) command {
	type opts struct {
		api apiFlags
		own O
	}
	c.usage = strings.TrimSpace(c.usage) + "\n\n" + apiNeeds
	c.flags = func(fs *flag.FlagSet) any {
		o := &opts{}
		o.api.bind(fs)
		if bind != nil {
			bind(fs, &o.own)
		}
		return o
	}
	c.run = func(e *env, v any, args []string) int {
		o := v.(*opts)
		cl, err := o.api.connect()
		if err == nil {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			err = run(ctx, &session{env: e, cl: cl, out: o.api.output}, &o.own, args)
		}
		return e.exitFor(c, err)
	}
	return c
}

// exitFor prints err, if any, after the command's name and returns the exit status it means.
func (e *env) exitFor(c command, err error) int {
	var usage usageFailure
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &usage):
		return e.usageError(c, usage.Error())
	}
	fmt.Fprintf(e.stderr, "%s %s: %v\n", e.name, c.name, err)
	return ExitFailed
}

// apiClient drives an installation through its REST API: the cluster of the commands.
type apiClient struct {
	base      string // the API's base URL, without a trailing slash
	key       string
	namespace string
	http      *http.Client
}

// newAPIClient checks the cluster flags and returns a client; a missing or malformed URL is a
// usageFailure that says how to give it.
func newAPIClient(f apiFlags) (*apiClient, error) {
	if f.url == "" {
		return nil, usageFailure(EnvAPIURL + " is not set: export " + EnvAPIURL + "=http://HOST:8088/api (the manager's API server) and " + EnvAPIKey + ", or pass --api-url and --api-key; or give a kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config) to work on the objects")
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageFailure(fmt.Sprintf("the API URL %q (--api-url or %s) is not an http(s) URL such as http://127.0.0.1:8088/api", f.url, EnvAPIURL))
	}
	key := f.key
	if key == "" {
		key = os.Getenv(EnvAPIKey)
	}
	return &apiClient{base: strings.TrimRight(f.url, "/"), key: key, namespace: f.namespace,
		http: &http.Client{Timeout: apiRequestTimeout}}, nil
}

// StartRun posts the request to /workflows/runs.
func (a *apiClient) StartRun(ctx context.Context, req restapi.StartRunRequest) (restapi.RunDetail, error) {
	var run restapi.RunDetail
	err := a.call(ctx, http.MethodPost, "/workflows/runs", a.query(""), req, &run)
	return run, err
}

// GetRun reads /workflows/runs/{id} with the page's steps query.
func (a *apiClient) GetRun(ctx context.Context, namespace, id string, page stepsPage) (restapi.RunDetail, error) {
	q := a.query(namespace)
	if page.Limit > 0 {
		q.Set("steps_limit", strconv.Itoa(page.Limit))
	}
	setIf(q, "steps_continue", page.Continue)
	if page.Results {
		q.Set("include_results", "true")
	}
	var run restapi.RunDetail
	err := a.call(ctx, http.MethodGet, "/workflows/runs/"+url.PathEscape(id), q, nil, &run)
	return run, err
}

// ListRuns reads a page of /workflows/runs.
func (a *apiClient) ListRuns(ctx context.Context, f runFilter) (restapi.RunList, error) {
	q := a.query("")
	q.Set("limit", strconv.Itoa(f.Limit))
	setIf(q, "workflow_name", f.Workflow)
	setIf(q, "status", f.Phases)
	setIf(q, "continue", f.Continue)
	var page restapi.RunList
	err := a.call(ctx, http.MethodGet, "/workflows/runs", q, nil, &page)
	return page, err
}

// CancelRun posts to /workflows/runs/{id}/cancel.
func (a *apiClient) CancelRun(ctx context.Context, id string) (restapi.RunDetail, error) {
	var run restapi.RunDetail
	err := a.call(ctx, http.MethodPost, "/workflows/runs/"+url.PathEscape(id)+"/cancel", a.query(""), nil, &run)
	return run, err
}

// SendEvent posts the event to /workflows/events.
func (a *apiClient) SendEvent(ctx context.Context, req restapi.EventRequest) (restapi.Event, error) {
	var ev restapi.Event
	err := a.call(ctx, http.MethodPost, "/workflows/events", a.query(""), req, &ev)
	return ev, err
}

// Workflows reads /workflows.
func (a *apiClient) Workflows(ctx context.Context) (restapi.WorkflowList, error) {
	var list restapi.WorkflowList
	err := a.call(ctx, http.MethodGet, "/workflows", a.query(""), nil, &list)
	return list, err
}

// ListSchedules reads a page of /workflows/schedules.
func (a *apiClient) ListSchedules(ctx context.Context, token string) (restapi.ScheduleList, error) {
	q := a.query("")
	q.Set("limit", "100")
	setIf(q, "continue", token)
	var page restapi.ScheduleList
	err := a.call(ctx, http.MethodGet, "/workflows/schedules", q, nil, &page)
	return page, err
}

// TriggerSchedule posts to /workflows/schedules/{name}/trigger.
func (a *apiClient) TriggerSchedule(ctx context.Context, name string) (restapi.RunDetail, error) {
	var run restapi.RunDetail
	err := a.call(ctx, http.MethodPost, schedulePath(name, "trigger"), a.query(""), nil, &run)
	return run, err
}

// PauseSchedule posts the note to /workflows/schedules/{name}/pause.
func (a *apiClient) PauseSchedule(ctx context.Context, name, note string) (restapi.Schedule, error) {
	var s restapi.Schedule
	err := a.call(ctx, http.MethodPost, schedulePath(name, "pause"), a.query(""), restapi.PauseRequest{Note: note}, &s)
	return s, err
}

// ResumeSchedule posts to /workflows/schedules/{name}/resume.
func (a *apiClient) ResumeSchedule(ctx context.Context, name string) (restapi.Schedule, error) {
	var s restapi.Schedule
	err := a.call(ctx, http.MethodPost, schedulePath(name, "resume"), a.query(""), nil, &s)
	return s, err
}

// schedulePath is the path of an action on schedule name.
func schedulePath(name, action string) string {
	return "/workflows/schedules/" + url.PathEscape(name) + "/" + action
}

// query starts a query with the namespace: namespace when not empty, else --namespace.
func (a *apiClient) query(namespace string) url.Values {
	q := url.Values{}
	setIf(q, "namespace", cmp.Or(namespace, a.namespace))
	return q
}

// setIf sets key in q to v when v is not empty.
func setIf(q url.Values, key, v string) {
	if v != "" {
		q.Set(key, v)
	}
}

// call sends method to path (relative to the base URL, such as /workflows/runs) with query and
// body as JSON when not nil, and decodes a 2xx answer into out. An error answer is an
// *apierror.Error with the API's status, code and message.
func (a *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	req, err := a.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		}
		return fmt.Errorf("call the API at %s (is %s right, and the manager's API server reachable?): %w", a.base, EnvAPIURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return answerError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode the answer of %s %s (is %s the API's base, ending in /api?): %w", method, path, EnvAPIURL, err)
	}
	return nil
}

// request builds the HTTP request of call, with the API key.
func (a *apiClient) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode the request: %w", err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, fmt.Errorf("build the request %s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.key != "" {
		req.Header.Set(restapi.APIKeyHeader, a.key)
	}
	return req, nil
}

// answerError is the *apierror.Error of an error answer: the API's code and message, or, for
// an answer that is not the API's (a proxy, a wrong URL), its status and the start of its body.
func answerError(status int, data []byte) error {
	var b apierror.Body
	if err := json.Unmarshal(data, &b); err == nil && b.Error.Code != "" {
		return &apierror.Error{Status: status, Code: b.Error.Code, Message: b.Error.Message}
	}
	return &apierror.Error{Status: status, Code: strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"),
		Message: fmt.Sprintf("not an answer of the Centaur API (is %s its base, ending in /api?): %s", EnvAPIURL, cell(string(data), 200))}
}
