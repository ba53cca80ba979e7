package restapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

var _ = Describe("POST /api/workflows/runs", func() {
	It("starts a run with the seed's curl line and the controller runs it", func() {
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "Ada"}}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		run := as[restapi.RunDetail](r)
		Expect(run.ID).NotTo(BeEmpty())
		Expect(run.Namespace).To(Equal("default"))
		Expect(run.WorkflowName).To(Equal("hello"))
		Expect(run.Status).To(Equal("Pending"))
		Expect(run.Input).To(MatchJSON(`{"name":"Ada"}`))
		Expect(run.CreatedAt).To(BeTemporally("~", time.Now(), 5*time.Second))
		Expect(run.URL).To(Equal(apiURL + "/workflows/runs/" + run.ID + "?namespace=default"))
		Expect(r.header.Get("Location")).To(Equal("/api/workflows/runs/" + run.ID + "?namespace=default"))

		stored := &workflowsv1alpha1.WorkflowRun{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: run.ID}, stored)).To(Succeed())
		Expect(stored.Labels).To(HaveKeyWithValue(workflowsv1alpha1.LabelWorkflow, "hello"))
		Expect(stored.Annotations).To(HaveKeyWithValue(workflowsv1alpha1.AnnotationAPIKeyID, "admin"))

		Eventually(statusOf(run.ID, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Succeeded"))
		done := getRun(run.ID, "default")
		Expect(done.Output).To(MatchJSON(`{"greeting":"Hello, Ada!"}`))
		Expect(done.StartedAt).NotTo(BeNil())
		Expect(done.FinishedAt).NotTo(BeNil())
		Expect(done.Error).To(BeNil())
		Expect(done.Steps).To(HaveLen(1))
		Expect(done.Steps[0]).To(matchStep("greet", "Step", "Completed", 1))
		Expect(done.Steps[0].StartedAt).NotTo(BeNil())
		Expect(done.Steps[0].FinishedAt).NotTo(BeNil())
	})

	It("shows a failed run's reason and message", func() {
		r := send(http.MethodPost, "/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": ""}, "eager_start": true}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		run := as[restapi.RunDetail](r)
		Expect(run.Status).To(Equal("Failed"))
		Expect(run.Error).NotTo(BeNil())
		Expect(run.Error.Reason).NotTo(BeEmpty())
		Expect(run.Error.Message).To(ContainSubstring("input.name is empty"))
		Expect(run.Steps[0].State).To(Equal("Failed"))
		Expect(run.Steps[0].Error).To(ContainSubstring("input.name is empty"))
	})

	It("refuses an unknown workflow at once, listing the known ones", func() {
		e := expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "helo"}`), http.StatusUnprocessableEntity, apierror.CodeUnknownWorkflow)
		Expect(e.Message).To(ContainSubstring(`"helo"`))
		Expect(e.Message).To(ContainSubstring("hello, nightly_report"))
	})

	It("refuses malformed bodies with 400 and says what to fix", func() {
		e := expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello",}`), http.StatusBadRequest, apierror.CodeMalformedBody)
		Expect(e.Message).To(ContainSubstring("invalid JSON"))
		e = expectError(curlPost("/workflows/runs", adminKey, `{"workflow": "hello"}`), http.StatusBadRequest, apierror.CodeMalformedBody)
		Expect(e.Message).To(ContainSubstring(`unknown field "workflow"`))
		expectError(curlPost("/workflows/runs", adminKey, ``), http.StatusBadRequest, apierror.CodeMalformedBody)
		expectError(curlPost("/workflows/runs", adminKey, `{}`), http.StatusBadRequest, apierror.CodeInvalidRequest)
	})

	It("refuses bodies over 1 MiB with 413", func() {
		big := `{"workflow_name": "hello", "input": {"name": "` + strings.Repeat("a", restapi.MaxBodyBytes) + `"}}`
		expectError(send(http.MethodPost, "/workflows/runs", adminKey, big, "Content-Type", "application/json"), http.StatusRequestEntityTooLarge, apierror.CodePayloadTooLarge)
	})

	It("acts in the namespace the body or the query names, within the key's scope", func() {
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "A"}, "namespace": "team-a"}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		Expect(as[restapi.RunDetail](r).Namespace).To(Equal("team-a"))
		r = curlPost("/workflows/runs?namespace=team-a", adminKey, `{"workflow_name": "hello", "input": {"name": "A"}}`)
		Expect(as[restapi.RunDetail](r).Namespace).To(Equal("team-a"))

		expectError(curlPost("/workflows/runs?namespace=default", adminKey, `{"workflow_name": "hello", "namespace": "team-a"}`), http.StatusBadRequest, apierror.CodeInvalidRequest)
		e := expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "namespace": "team-b"}`), http.StatusForbidden, apierror.CodeForbidden)
		Expect(e.Message).To(ContainSubstring("default, ghost, idem, measure, paging, team-a"))
		e = expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "namespace": "ghost"}`), http.StatusNotFound, apierror.CodeNotFound)
		Expect(e.Message).To(ContainSubstring("ghost"))
	})
})

var _ = Describe("eager start", func() {
	It("answers hello with status Succeeded and its output in the POST response", func() {
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "Ada"}, "eager_start": true}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		run := as[restapi.RunDetail](r)
		Expect(run.Status).To(Equal("Succeeded"))
		Expect(run.Output).To(MatchJSON(`{"greeting":"Hello, Ada!"}`))
		Expect(run.FinishedAt).NotTo(BeNil())
		Expect(run.Steps).To(HaveLen(1))
		Expect(run.Steps[0]).To(matchStep("greet", "Step", "Completed", 1))
	})

	It("answers a sleeping run once it sleeps", func() {
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "countdown", "input": {"seconds": 600}, "eager_start": true}`)
		run := as[restapi.RunDetail](r)
		Expect(run.Status).To(Equal("Sleeping"))
		Expect(run.CurrentStep).To(Equal("countdown"))
		Expect(run.WakeAt).NotTo(BeNil())
		Expect(*run.WakeAt).To(BeTemporally("~", time.Now().Add(600*time.Second), 10*time.Second))
		Expect(run.Steps).To(HaveLen(1))
		Expect(run.Steps[0].Kind).To(Equal("Sleep"))
	})

	It("answers after its bound with the run as it stands, and the step still finishes", func() {
		start := time.Now()
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "slow", "input": {"millis": 3000}, "eager_start": true}`)
		took := time.Since(start)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		run := as[restapi.RunDetail](r)
		Expect(run.Status).To(BeElementOf("Pending", "Running"))
		Expect(took).To(BeNumerically(">=", eagerBound))
		Expect(took).To(BeNumerically("<", eagerBound+3*time.Second), "generous: two cores are shared")

		Eventually(statusOf(run.ID, "default"), 10*time.Second, 100*time.Millisecond).Should(Equal("Succeeded"))
		done := getRun(run.ID, "default")
		Expect(done.Output).To(MatchJSON(`"rested"`))
		Expect(done.Steps[0].Attempts).To(BeEquivalentTo(1), "the bound must not cut the step short")
	})
})

// Issue #13, finding 6: eager starts take their executions from the controller's budget
// (--max-concurrent-reconciles, 8 in the suite).
var _ = Describe("eager start with every execution in use", func() {
	It("answers at once with the run as created, and the controller runs it once a slot frees", func() {
		var slow []string
		for range 8 {
			r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "slow", "input": {"millis": 8000}}`)
			Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
			slow = append(slow, as[restapi.RunDetail](r).ID)
		}
		Eventually(napping.Load, 10*time.Second, 20*time.Millisecond).Should(BeEquivalentTo(8),
			"the controller executes all 8, which spends the budget")

		start := time.Now()
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "Later"}, "eager_start": true}`)
		took := time.Since(start)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		run := as[restapi.RunDetail](r)
		Expect(run.Status).To(Equal("Pending"), "not executed by the eager start")
		Expect(run.Steps).To(BeEmpty())
		Expect(took).To(BeNumerically("<", eagerBound), "answered without waiting for the bound")

		Eventually(statusOf(run.ID, "default"), 20*time.Second, 100*time.Millisecond).Should(Equal("Succeeded"))
		done := getRun(run.ID, "default")
		Expect(done.Output).To(MatchJSON(`{"greeting":"Hello, Later!"}`))
		Expect(done.Steps).To(HaveLen(1))
		Expect(done.Steps[0].Attempts).To(BeEquivalentTo(1))
		for _, id := range slow {
			Eventually(statusOf(id, "default"), 15*time.Second, 100*time.Millisecond).Should(Equal("Succeeded"))
		}
	})
})

var _ = Describe("idempotency keys", func() {
	It("starts one run for 20 concurrent identical POSTs", func() {
		const n = 20
		body := `{"workflow_name": "hello", "input": {"name": "Once"}, "idempotency_key": "order-7", "namespace": "idem", "eager_start": true}`
		replies := make([]reply, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				defer GinkgoRecover()
				replies[i] = curlPost("/workflows/runs", adminKey, body)
			})
		}
		wg.Wait()

		statuses := map[int]int{}
		ids := map[string]bool{}
		for _, r := range replies {
			statuses[r.status]++
			run := as[restapi.RunDetail](r)
			ids[run.ID] = true
			Expect(run.IdempotencyKey).To(Equal("order-7"))
		}
		Expect(statuses).To(Equal(map[int]int{http.StatusCreated: 1, http.StatusOK: n - 1}))
		Expect(ids).To(HaveLen(1))

		list := &workflowsv1alpha1.WorkflowRunList{}
		Expect(k8sClient.List(context.Background(), list, client.InNamespace("idem"))).To(Succeed())
		Expect(list.Items).To(HaveLen(1))

		By("answering a later retry with the run as it stands now")
		var id string
		for k := range ids {
			id = k
		}
		Eventually(statusOf(id, "idem"), 10*time.Second, 50*time.Millisecond).Should(Equal("Succeeded"))
		r := curlPost("/workflows/runs", adminKey, body)
		Expect(r.status).To(Equal(http.StatusOK))
		Expect(as[restapi.RunDetail](r).Output).To(MatchJSON(`{"greeting":"Hello, Once!"}`))
	})

	It("refuses the same key for a different input", func() {
		Expect(curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "A"}, "idempotency_key": "k-2", "namespace": "idem"}`).status).To(Equal(http.StatusCreated))
		Expect(curlPost("/workflows/runs", adminKey, `{"workflow_name":"hello","input":{ "name":"A" },"idempotency_key":"k-2","namespace":"idem"}`).status).To(Equal(http.StatusOK))
		e := expectError(curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "B"}, "idempotency_key": "k-2", "namespace": "idem"}`), http.StatusConflict, apierror.CodeConflict)
		Expect(e.Message).To(ContainSubstring("different input"))
	})
})

var _ = Describe("GET /api/workflows/runs/{id}", func() {
	It("answers 404 for a run that does not exist, and 403 outside the key's namespaces", func() {
		e := expectError(send(http.MethodGet, "/workflows/runs/no-such-run", adminKey, ""), http.StatusNotFound, apierror.CodeNotFound)
		Expect(e.Message).To(ContainSubstring(`no run "no-such-run" in namespace "default"`))
		expectError(send(http.MethodGet, "/workflows/runs/Not_A_Name", adminKey, ""), http.StatusNotFound, apierror.CodeNotFound)
		expectError(send(http.MethodGet, "/workflows/runs/x?namespace=team-b", adminKey, ""), http.StatusForbidden, apierror.CodeForbidden)
	})
})

var _ = Describe("POST /api/workflows/runs/{id}/cancel", func() {
	It("cancels a sleeping run", func() {
		run := as[restapi.RunDetail](curlPost("/workflows/runs", adminKey, `{"workflow_name": "countdown", "input": {"seconds": 600}, "eager_start": true}`))
		Expect(run.Status).To(Equal("Sleeping"))

		r := send(http.MethodPost, "/workflows/runs/"+run.ID+"/cancel", adminKey, "")
		Expect(r.status).To(Equal(http.StatusAccepted), "body: %s", r.body)
		Expect(as[restapi.RunDetail](r).CancelRequested).To(BeTrue())
		Eventually(statusOf(run.ID, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Cancelled"))

		By("answering 200 when it is cancelled already")
		r = send(http.MethodPost, "/workflows/runs/"+run.ID+"/cancel", adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK))
		Expect(as[restapi.RunDetail](r).Status).To(Equal("Cancelled"))
	})

	It("answers 409 for a run that already finished and 404 for none", func() {
		run := as[restapi.RunDetail](curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "A"}, "eager_start": true}`))
		Expect(run.Status).To(Equal("Succeeded"))
		e := expectError(send(http.MethodPost, "/workflows/runs/"+run.ID+"/cancel", adminKey, ""), http.StatusConflict, apierror.CodeConflict)
		Expect(e.Message).To(ContainSubstring("already finished (Succeeded)"))
		expectError(send(http.MethodPost, "/workflows/runs/nope/cancel", adminKey, ""), http.StatusNotFound, apierror.CodeNotFound)
	})
})

// matchStep matches a step's name, kind, state and attempts.
var _ = Describe("GET /api/workflows/runs/{id} of a long run", func() {
	It("returns every step in order, a page at a time, assembled from segments and payloads", func() {
		r := send(http.MethodPost, "/workflows/runs", adminKey, `{"workflow_name": "steps_many", "input": {"steps": 1200, "large_at": 700}}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		id := as[restapi.RunDetail](r).ID
		Eventually(statusOf(id, "default"), time.Minute, 100*time.Millisecond).Should(Equal("Succeeded"))

		first := getRun(id, "default")
		Expect(first.StepsTotal).To(Equal(int64(1200)))
		Expect(first.Steps).To(HaveLen(500), "the default page")
		Expect(first.StepsContinue).NotTo(BeEmpty())

		var names []string
		var large restapi.Step
		token := ""
		for pages := 0; ; pages++ {
			Expect(pages).To(BeNumerically("<", 20))
			page := send(http.MethodGet, "/workflows/runs/"+id+"?namespace=default&include_results=true&steps_limit=100&steps_continue="+url.QueryEscape(token), adminKey, "")
			Expect(page.status).To(Equal(http.StatusOK), "body: %s", page.body)
			d := as[restapi.RunDetail](page)
			Expect(len(d.Steps)).To(BeNumerically("<=", 100))
			for _, st := range d.Steps {
				names = append(names, st.Name)
				Expect(st.Result).NotTo(BeEmpty(), "step %s has its result", st.Name)
				if st.Name == "s-0700" {
					large = st
				}
			}
			if token = d.StepsContinue; token == "" {
				break
			}
		}
		Expect(names).To(HaveLen(1200))
		for i, n := range names {
			Expect(n).To(Equal(fmt.Sprintf("s-%04d", i)))
		}
		Expect(string(large.Result)).To(Equal(`"`+strings.Repeat("L", 10<<10)+`"`), "read from its WorkflowRunPayload")

		var segs workflowsv1alpha1.WorkflowRunSegmentList
		Expect(k8sClient.List(context.Background(), &segs, client.InNamespace("default"), client.MatchingLabels{workflowsv1alpha1.LabelRun: id})).To(Succeed())
		Expect(segs.Items).NotTo(BeEmpty(), "the journal is sealed into segments")
	})

	It("refuses a steps_continue it did not issue and a steps_limit out of range", func() {
		r := curlPost("/workflows/runs", adminKey, `{"workflow_name": "hello", "input": {"name": "Ada"}}`)
		id := as[restapi.RunDetail](r).ID
		bad := send(http.MethodGet, "/workflows/runs/"+id+"?steps_continue=garbage", adminKey, "")
		expectError(bad, http.StatusBadRequest, apierror.CodeInvalidRequest)
		zero := send(http.MethodGet, "/workflows/runs/"+id+"?steps_limit=0", adminKey, "")
		expectError(zero, http.StatusBadRequest, apierror.CodeInvalidRequest)
	})
})

func matchStep(name, kind, state string, attempts int) OmegaMatcher {
	return WithTransform(func(s restapi.Step) string {
		return fmt.Sprintf("%s/%s/%s/%d", s.Name, s.Kind, s.State, s.Attempts)
	}, Equal(fmt.Sprintf("%s/%s/%s/%d", name, kind, state, attempts)))
}
