package restapi_test

import (
	"context"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

var _ = Describe("POST /api/workflows/events", func() {
	It("resumes the run waiting for the event", func() {
		run := as[restapi.RunDetail](curlPost("/workflows/runs", adminKey, `{"workflow_name": "approval", "input": {"request_id": "req-rest-1"}, "eager_start": true}`))
		Expect(run.Status).To(Equal("Waiting"))
		Expect(run.WaitingFor).To(ContainSubstring("req-rest-1"))

		r := curlPost("/workflows/events", adminKey, `{"event_type": "approval.decided", "correlation_id": "req-rest-1", "payload": {"decision": "approved", "by": "ada"}}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		ev := as[restapi.Event](r)
		Expect(ev.ID).To(HavePrefix("approval-decided-"))
		Expect(ev.Namespace).To(Equal("default"))
		Expect(ev.Payload).To(MatchJSON(`{"decision": "approved", "by": "ada"}`))

		stored := &workflowsv1alpha1.WorkflowEvent{}
		Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: ev.ID}, stored)).To(Succeed())
		Expect(stored.Spec.Type).To(Equal("approval.decided"))
		Expect(stored.Spec.CorrelationID).To(Equal("req-rest-1"))

		Eventually(statusOf(run.ID, "default"), 10*time.Second, 50*time.Millisecond).Should(Equal("Succeeded"))
		Expect(getRun(run.ID, "default").Output).To(MatchJSON(`{"decision": "approved", "by": "ada"}`))
	})

	It("refuses an event without a type, and namespaces outside the key's scope", func() {
		e := expectError(curlPost("/workflows/events", adminKey, `{"correlation_id": "x"}`), http.StatusBadRequest, apierror.CodeInvalidRequest)
		Expect(e.Message).To(ContainSubstring("event_type is required"))
		expectError(curlPost("/workflows/events", adminKey, `{"event_type": "x"`), http.StatusBadRequest, apierror.CodeMalformedBody)
		expectError(curlPost("/workflows/events", teamBKey, `{"event_type": "x", "namespace": "default"}`), http.StatusForbidden, apierror.CodeForbidden)
	})
})

var _ = Describe("GET /api/workflows", func() {
	It("lists the registered workflows with their example inputs", func() {
		r := send(http.MethodGet, "/workflows", adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK))
		list := as[restapi.WorkflowList](r)
		names := []string{}
		for _, w := range list.Workflows {
			names = append(names, w.Name)
			if w.Name == "hello" {
				Expect(w.Description).NotTo(BeEmpty())
				Expect(w.ExampleInput).To(MatchJSON(`{"name": "Ada"}`))
			}
			if w.Name == "slow" {
				Expect(string(w.ExampleInput)).To(Equal("null"))
			}
		}
		Expect(names).To(Equal(registry.Names()))
	})
})
