package restapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/schedule"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// createSchedule creates a WorkflowSchedule in the default namespace, as kubectl apply would.
func createSchedule(expr, workflow, input string, mutate ...func(*workflowsv1alpha1.WorkflowSchedule)) *workflowsv1alpha1.WorkflowSchedule {
	GinkgoHelper()
	ws := &workflowsv1alpha1.WorkflowSchedule{
		ObjectMeta: metav1.ObjectMeta{Name: "rest-" + rand.String(6), Namespace: "default"},
		Spec:       workflowsv1alpha1.WorkflowScheduleSpec{Schedule: expr, WorkflowName: workflow},
	}
	if input != "" {
		ws.Spec.Input = &apiextensionsv1.JSON{Raw: []byte(input)}
	}
	for _, m := range mutate {
		m(ws)
	}
	Expect(k8sClient.Create(context.Background(), ws)).To(Succeed())
	DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), ws) })
	return ws
}

// getScheduleView reads a schedule through the REST API.
func getScheduleView(name string) restapi.Schedule {
	GinkgoHelper()
	r := send(http.MethodGet, "/workflows/schedules/"+name, adminKey, "")
	Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
	return as[restapi.Schedule](r)
}

// forbid sets concurrencyPolicy Forbid.
func forbid(ws *workflowsv1alpha1.WorkflowSchedule) {
	ws.Spec.ConcurrencyPolicy = workflowsv1alpha1.ConcurrencyForbid
}

var _ = Describe("GET /api/workflows/schedules", func() {
	It("lists the namespace's schedules and shows one with its next tick once it is ready", func() {
		ws := createSchedule("0 2 * * *", "nightly_report", `{"channel": "#ops", "items": ["a"]}`, func(ws *workflowsv1alpha1.WorkflowSchedule) {
			ws.Spec.TimeZone = "Europe/Berlin"
			ws.Spec.StartingDeadline = &metav1.Duration{Duration: 6 * time.Hour}
		})
		r := send(http.MethodGet, "/workflows/schedules?limit=100", adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
		var names []string
		for _, s := range as[restapi.ScheduleList](r).Schedules {
			names = append(names, s.Name)
		}
		Expect(names).To(ContainElement(ws.Name))

		Eventually(func() bool { return getScheduleView(ws.Name).Ready }, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
		v := getScheduleView(ws.Name)
		Expect(v.Namespace).To(Equal("default"))
		Expect(v.WorkflowName).To(Equal("nightly_report"))
		Expect(v.Schedule).To(Equal("0 2 * * *"))
		Expect(v.TimeZone).To(Equal("Europe/Berlin"))
		Expect(v.Input).To(MatchJSON(`{"channel": "#ops", "items": ["a"]}`))
		Expect(v.ConcurrencyPolicy).To(Equal("Allow"))
		Expect(v.CatchUp).To(Equal("Latest"))
		Expect(v.StartingDeadline).To(Equal("6h0m0s"))
		Expect(v.Reason).To(Equal("Scheduled"))
		Expect(v.NextScheduleTime).NotTo(BeNil())
		berlin, _ := time.LoadLocation("Europe/Berlin")
		next := v.NextScheduleTime.In(berlin)
		Expect([]int{next.Hour(), next.Minute()}).To(Equal([]int{2, 0}), "the next tick is at 02:00 in Berlin")
		Expect(v.URL).To(Equal(apiURL + "/workflows/schedules/" + ws.Name + "?namespace=default"))
		Expect(v.ActiveRuns).To(BeEmpty())
		Expect(v.RecentTicks).To(BeEmpty())
	})

	It("answers 404 for a schedule that does not exist, and 403 outside the key's namespaces", func() {
		expectError(send(http.MethodGet, "/workflows/schedules/nope", adminKey, ""), http.StatusNotFound, apierror.CodeNotFound)
		expectError(send(http.MethodGet, "/workflows/schedules?namespace=default", teamBKey, ""), http.StatusForbidden, apierror.CodeForbidden)
		expectError(send(http.MethodGet, "/workflows/schedules?limit=0", adminKey, ""), http.StatusBadRequest, apierror.CodeInvalidRequest)
	})
})

var _ = Describe("POST /api/workflows/schedules/{name}/trigger", func() {
	It("starts a run now, named after the second, labelled with and owned by the schedule", func() {
		ws := createSchedule("0 2 * * *", "hello", `{"name": "Now"}`)
		before := time.Now().Truncate(time.Second)
		r := send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/trigger", adminKey, "")
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		run := as[restapi.RunDetail](r)
		Expect(run.ID).To(HaveSuffix("-manual"))
		Expect(run.ID).To(HavePrefix(ws.Name + "-"))
		Expect(r.header.Get("Location")).To(Equal("/api/workflows/runs/" + run.ID + "?namespace=default"))
		Eventually(statusOf(run.ID, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Succeeded"))

		stored := &workflowsv1alpha1.WorkflowRun{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: run.ID}, stored)).To(Succeed())
		Expect(stored.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelSchedule, ws.Name))
		Expect(stored.Annotations).To(HaveKeyWithValue(workflowsv1alpha1.AnnotationScheduleTrigger, schedule.TriggerManual))
		Expect(metav1.IsControlledBy(stored, ws)).To(BeTrue())
		tick, ok := schedule.TickOf(stored)
		Expect(ok).To(BeTrue())
		Expect(tick).To(BeTemporally(">=", before))

		r = send(http.MethodGet, "/workflows/runs?schedule="+ws.Name, adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
		Expect(as[restapi.RunList](r).Runs).To(ConsistOf(HaveField("ID", run.ID)), "the runs list filters by schedule")
	})

	It("answers 409 under Forbid while a run is in flight, and Replace cancels the run in flight", func() {
		ws := createSchedule("0 2 * * *", "approval", `{"request_id": "rest-`+rand.String(6)+`"}`, forbid)
		first := send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/trigger", adminKey, "")
		Expect(first.status).To(Equal(http.StatusCreated), "body: %s", first.body)
		running := as[restapi.RunDetail](first).ID
		Eventually(statusOf(running, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Waiting"))
		e := expectError(send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/trigger", adminKey, ""), http.StatusConflict, apierror.CodeConflict)
		Expect(e.Message).To(ContainSubstring(running))
		Expect(e.Message).To(ContainSubstring("cancel"))

		Expect(k8sClient.Patch(context.Background(), ws, client.RawPatch("application/merge-patch+json", []byte(`{"spec": {"concurrencyPolicy": "Replace"}}`)))).To(Succeed())
		time.Sleep(1100 * time.Millisecond) // a new second, so the trigger is a new run
		r := send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/trigger", adminKey, "")
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		Expect(as[restapi.RunDetail](r).ID).NotTo(Equal(running))
		Eventually(statusOf(running, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Cancelled"))
	})

	It("answers 422 for a schedule of an unknown workflow", func() {
		ws := createSchedule("0 2 * * *", "no_such_workflow", "")
		e := expectError(send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/trigger", adminKey, ""), http.StatusUnprocessableEntity, apierror.CodeUnknownWorkflow)
		Expect(e.Message).To(ContainSubstring("hello"))
	})
})

var _ = Describe("POST /api/workflows/schedules/{name}/pause and /resume", func() {
	It("pauses with a note, which Ready repeats, and resumes", func() {
		ws := createSchedule("0 2 * * *", "hello", `{"name": "P"}`)
		r := curlPost("/workflows/schedules/"+ws.Name+"/pause", adminKey, `{"note": "paused during the database migration"}`)
		Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
		v := as[restapi.Schedule](r)
		Expect(v.Paused).To(BeTrue())
		Expect(v.PauseNote).To(Equal("paused during the database migration"))
		stored := &workflowsv1alpha1.WorkflowSchedule{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(ws), stored)).To(Succeed())
		Expect(stored.Spec.Suspend).To(BeTrue())
		Expect(stored.Spec.SuspendNote).To(Equal("paused during the database migration"))
		Eventually(func() string { return getScheduleView(ws.Name).Reason }, 10*time.Second, 50*time.Millisecond).Should(Equal("Suspended"))
		Expect(getScheduleView(ws.Name).Message).To(ContainSubstring("paused during the database migration"))

		r = send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/resume", adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
		v = as[restapi.Schedule](r)
		Expect(v.Paused).To(BeFalse())
		Expect(v.PauseNote).To(BeEmpty())
		Eventually(func() string { return getScheduleView(ws.Name).Reason }, 10*time.Second, 50*time.Millisecond).Should(Equal("Scheduled"))

		r = send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/pause", adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK), "a pause needs no body: %s", r.body)
		Expect(as[restapi.Schedule](r).PauseNote).To(BeEmpty())
	})

	It("refuses a body it does not understand and a note that is too long", func() {
		ws := createSchedule("0 2 * * *", "hello", "")
		expectError(send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/pause", adminKey, `{"reason": "x"}`), http.StatusBadRequest, apierror.CodeMalformedBody)
		long, _ := json.Marshal(map[string]string{"note": strings.Repeat("n", 1025)})
		expectError(send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/pause", adminKey, string(long)), http.StatusBadRequest, apierror.CodeInvalidRequest)
		expectError(send(http.MethodPost, "/workflows/schedules/nope/resume", adminKey, ""), http.StatusNotFound, apierror.CodeNotFound)
	})
})

var _ = Describe("POST /api/workflows/schedules/{name}/backfill", func() {
	It("starts each tick of the range once, named as the schedule names its ticks", func() {
		ws := createSchedule("0 * * * *", "hello", `{"name": "Back"}`)
		end := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
		start := end.Add(-3 * time.Hour)
		body := fmt.Sprintf(`{"start_time": %q, "end_time": %q}`, start.Format(time.RFC3339), end.Format(time.RFC3339))
		r := curlPost("/workflows/schedules/"+ws.Name+"/backfill", adminKey, body)
		Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
		res := as[restapi.BackfillResult](r)
		Expect(res.Created).To(Equal(3))
		Expect(res.Existing).To(Equal(0))
		for i, tick := range res.Ticks {
			want := start.Add(time.Duration(i) * time.Hour)
			Expect(tick.ScheduledTime).To(BeTemporally("==", want), "start included, end excluded")
			Expect(tick.Run).To(Equal(schedule.TickRunName(ws.Name, want)))
			Expect(tick.Created).To(BeTrue())
			Eventually(statusOf(tick.Run, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Succeeded"))
		}
		stored := &workflowsv1alpha1.WorkflowRun{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: res.Ticks[0].Run}, stored)).To(Succeed())
		Expect(stored.Annotations).To(HaveKeyWithValue(workflowsv1alpha1.AnnotationScheduleTrigger, schedule.TriggerBackfill))

		By("repeating it")
		again := as[restapi.BackfillResult](curlPost("/workflows/schedules/"+ws.Name+"/backfill", adminKey, body))
		Expect(again.Created).To(Equal(0))
		Expect(again.Existing).To(Equal(3))
	})

	It("refuses a range it cannot backfill, saying why", func() {
		ws := createSchedule("* * * * *", "hello", `{"name": "Back"}`)
		now := time.Now().UTC()
		backfill := func(start, end time.Time) reply {
			return send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/backfill", adminKey,
				fmt.Sprintf(`{"start_time": %q, "end_time": %q}`, start.Format(time.RFC3339), end.Format(time.RFC3339)))
		}
		e := expectError(backfill(now.Add(-time.Hour), now.Add(time.Hour)), http.StatusUnprocessableEntity, apierror.CodeInvalidRequest)
		Expect(e.Message).To(ContainSubstring("future"))
		e = expectError(backfill(now.Add(-time.Hour), now.Add(-2*time.Hour)), http.StatusUnprocessableEntity, apierror.CodeInvalidRequest)
		Expect(e.Message).To(ContainSubstring("must come before"))
		e = expectError(backfill(now.Add(-48*time.Hour), now.Add(-time.Hour)), http.StatusUnprocessableEntity, apierror.CodeInvalidRequest)
		Expect(e.Message).To(ContainSubstring("more than 1000 ticks"))
		expectError(send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/backfill", adminKey, `{"start_time": "yesterday"}`), http.StatusBadRequest, apierror.CodeMalformedBody)
		expectError(send(http.MethodPost, "/workflows/schedules/"+ws.Name+"/backfill", adminKey, `{}`), http.StatusUnprocessableEntity, apierror.CodeInvalidRequest)
		Expect(scheduleRunCount(ws)).To(BeZero(), "a refused backfill starts nothing")
	})
})

// scheduleRunCount counts the runs of ws.
func scheduleRunCount(ws *workflowsv1alpha1.WorkflowSchedule) int {
	GinkgoHelper()
	var list workflowsv1alpha1.WorkflowRunList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(ws.Namespace), client.MatchingLabels{workflowsv1alpha1.LabelSchedule: ws.Name})).To(Succeed())
	return len(list.Items)
}
