package restapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

var _ = Describe("GET /api/workflows/runs", Ordered, func() {
	const ns = "paging"
	var created []string // ids in creation order
	var byKubectl string

	BeforeAll(func() {
		for range 3 {
			r := curlPost("/workflows/runs?namespace="+ns, adminKey, `{"workflow_name": "countdown", "input": {"seconds": 600}}`)
			Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
			created = append(created, as[restapi.RunDetail](r).ID)
		}
		for range 120 {
			r := curlPost("/workflows/runs?namespace="+ns, adminKey, `{"workflow_name": "hello", "input": {"name": "Page"}}`)
			Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
			created = append(created, as[restapi.RunDetail](r).ID)
		}
		run := &workflowsv1alpha1.WorkflowRun{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "hello-", Namespace: ns},
			Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: "hello", Input: &apiextensionsv1.JSON{Raw: []byte(`{"name":"kubectl"}`)}},
		}
		Expect(k8sClient.Create(context.Background(), run)).To(Succeed())
		byKubectl = run.Name
	})

	// page reads every page of a listing with the given query and returns the ids in order.
	page := func(query url.Values) (ids []string, pages int) {
		GinkgoHelper()
		query.Set("namespace", ns)
		for {
			r := send(http.MethodGet, "/workflows/runs?"+query.Encode(), adminKey, "")
			Expect(r.status).To(Equal(http.StatusOK), "body: %s", r.body)
			list := as[restapi.RunList](r)
			pages++
			for _, run := range list.Runs {
				ids = append(ids, run.ID)
			}
			if list.Continue == "" {
				return ids, pages
			}
			query.Set("continue", list.Continue)
		}
	}

	It("pages through 120 runs newest first, runs created by other means last", func() {
		ids, pages := page(url.Values{"limit": {"50"}})
		Expect(pages).To(Equal(3))
		want := slices.Clone(created)
		slices.Reverse(want)
		Expect(ids).To(Equal(append(want, byKubectl)))
	})

	It("answers the default page size without a limit", func() {
		r := send(http.MethodGet, "/workflows/runs?namespace="+ns, adminKey, "")
		list := as[restapi.RunList](r)
		Expect(list.Runs).To(HaveLen(20))
		Expect(list.Continue).NotTo(BeEmpty())
		Expect(list.Runs[0].ID).To(Equal(created[len(created)-1]))
		Expect(list.Runs[0].WorkflowName).To(Equal("hello"))
	})

	It("filters by workflow with a label selector", func() {
		ids, _ := page(url.Values{"workflow_name": {"countdown"}, "limit": {"2"}})
		Expect(ids).To(Equal([]string{created[2], created[1], created[0]}))
	})

	It("filters by status, filling pages across the API server's pages", func() {
		Eventually(func() []string {
			ids, _ := page(url.Values{"status": {"sleeping"}, "limit": {"2"}})
			return ids
		}, 15*time.Second, 200*time.Millisecond).Should(Equal([]string{created[2], created[1], created[0]}))
		Eventually(func() int {
			ids, _ := page(url.Values{"status": {"Succeeded"}, "limit": {"50"}})
			return len(ids)
		}, 30*time.Second, 500*time.Millisecond).Should(Equal(121))
		By("finding by workflow only the runs that carry the workflow label, which kubectl's run lacks")
		ids, pages := page(url.Values{"status": {"Succeeded"}, "limit": {"50"}, "workflow_name": {"hello"}})
		Expect(ids).To(HaveLen(120))
		Expect(ids).NotTo(ContainElement(byKubectl))
		Expect(pages).To(Equal(3))
		ids, _ = page(url.Values{"status": {"Running,Failed,Cancelled"}})
		Expect(ids).To(BeEmpty())
	})

	It("refuses bad parameters with 400", func() {
		for _, q := range []string{"limit=0", "limit=101", "limit=x", "status=Done", "workflow_name=-x", "continue=bogus"} {
			expectError(send(http.MethodGet, "/workflows/runs?namespace="+ns+"&"+q, adminKey, ""), http.StatusBadRequest, apierror.CodeInvalidRequest)
		}
		expectError(send(http.MethodGet, "/workflows/runs?namespace=team-b", adminKey, ""), http.StatusForbidden, apierror.CodeForbidden)
	})
})

var _ = Describe("a page of large runs", func() {
	It("ends at about 4 MiB of inputs with a continue token, whatever limit asked for", func() {
		workflow := "bulky_" + rand.String(6)
		input := []byte(`{"blob": "` + strings.Repeat("b", 600<<10) + `"}`)
		for i := range 12 {
			Expect(k8sClient.Create(context.Background(), &workflowsv1alpha1.WorkflowRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("%s-%02d", strings.ReplaceAll(workflow, "_", "-"), i),
					Labels: map[string]string{workflowsv1alpha1.LabelWorkflow: workflow}},
				Spec: workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow, Input: &apiextensionsv1.JSON{Raw: input}},
			})).To(Succeed())
		}
		r := send(http.MethodGet, "/workflows/runs?limit=100&workflow_name="+workflow, adminKey, "")
		Expect(r.status).To(Equal(http.StatusOK))
		first := as[restapi.RunList](r)
		Expect(len(first.Runs)).To(BeNumerically("<", 12), "a page of 12 × 600 KiB inputs: %d bytes", len(r.body))
		Expect(len(r.body)).To(BeNumerically("<", 12<<20))
		Expect(first.Continue).NotTo(BeEmpty())
		rest := as[restapi.RunList](send(http.MethodGet, "/workflows/runs?limit=100&workflow_name="+workflow+"&continue="+first.Continue, adminKey, ""))
		Expect(len(first.Runs) + len(rest.Runs)).To(Equal(12))
	})
})
