package webhookserver

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// productSecret is what the product's docs call GITHUB_WEBHOOK_SECRET "in the API deployment".
const productSecret = "spec-only-github-webhook-secret"

// definitionWebhooks waits until def's status lists its webhooks and the first has reason
// (empty: Ready), and returns it.
func definitionWebhook(def *workflowsv1alpha1.WorkflowDefinition, reason string) workflowsv1alpha1.DefinitionWebhook {
	GinkgoHelper()
	var hook workflowsv1alpha1.DefinitionWebhook
	Eventually(func(g Gomega) {
		fresh := &workflowsv1alpha1.WorkflowDefinition{}
		g.Expect(k8sClient.Get(context.Background(), client.ObjectKeyFromObject(def), fresh)).To(Succeed())
		g.Expect(fresh.Status.Webhooks).To(HaveLen(1))
		hook = fresh.Status.Webhooks[0]
		g.Expect(hook.Reason).To(Equal(reason), hook.Message)
		g.Expect(hook.Ready).To(Equal(reason == ""))
	}, waitFor, pollAt).Should(Succeed())
	return hook
}

var _ = Describe("Webhooks declared in workflow files", func() {
	It("serve the product's github_issue_triage file with the secret of GITHUB_WEBHOOK_SECRET: 202, then 200 on redelivery", func() {
		Expect(os.Setenv("GITHUB_WEBHOOK_SECRET", productSecret)).To(Succeed())
		DeferCleanup(os.Unsetenv, "GITHUB_WEBHOOK_SECRET")
		(&catalog.Dirs{Paths: []string{filepath.Join("..", "workflows")}, Catalog: workflowCatalog, Logger: logf.Log}).Load()
		DeferCleanup(workflowCatalog.SetFiles, []catalog.Entry(nil))
		_, ok := workflowCatalog.Lookup(codeNamespace, "github_issue_triage")
		Expect(ok).To(BeTrue(), "workflows/github_issue_triage.py did not load")

		const slug = "github-issue-triage"
		Eventually(func() int { return send(github(slug, productSecret, "d-1", issueBody(1))).status }, waitFor, pollAt).Should(Equal(http.StatusAccepted))
		Expect(send(github(slug, productSecret, "d-1", issueBody(1))).status).To(Equal(http.StatusOK))
		expectRefused(send(github(slug, "not-the-secret", "d-2", issueBody(2))), http.StatusUnauthorized, apierror.CodeUnauthorized)
		runs := runsOf(codeNamespace, slug)
		Expect(runs).To(HaveLen(1))
		Expect(runs[0].Spec.WorkflowName).To(Equal("github_issue_triage"))

		By("taking the route away when the file goes")
		workflowCatalog.SetFiles(nil)
		Eventually(func() int { return send(github(slug, productSecret, "d-3", issueBody(3))).status }, waitFor, pollAt).Should(Equal(http.StatusUnauthorized))
	})

	It("serve a WorkflowDefinition's webhook in its namespace once its Secret exists, and report a slug another definition holds", func() {
		ns, slug := newNamespace(), unique("tenant-hook")
		source := `
WORKFLOW_NAME = "tenant_hook"
WEBHOOKS = [WebhookSpec(slug = "` + slug + `", provider = "github", auth = HmacAuth.github(secret_ref = "hook-secret/token"))]
def handler(inp, ctx):
    return inp["webhook"]["body"]["issue"]["number"]
`
		def := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant-hook"},
			Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: source}}
		Expect(k8sClient.Create(context.Background(), def)).To(Succeed())
		hook := definitionWebhook(def, workflowsv1alpha1.ReasonSecretNotFound)
		Expect(hook.Path).To(Equal("/api/webhooks/" + slug))
		Expect(hook.Message).To(ContainSubstring("kubectl create secret generic hook-secret -n " + ns + " --from-literal=token="))
		expectRefused(send(github(slug, "tenant-value", "t-0", issueBody(0))), http.StatusServiceUnavailable, apierror.CodeNotReady)

		createSecret(ns, "hook-secret", map[string]string{"token": "tenant-value"})
		definitionWebhook(def, "")
		r := send(github(slug, "tenant-value", "t-1", issueBody(1)))
		Expect(r.status).To(Equal(http.StatusAccepted), string(r.body))
		Expect(r.run().Namespace).To(Equal(ns))

		By("a younger definition in another namespace claiming the same slug")
		time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second resolution
		other := newNamespace()
		rival := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "rival"},
			Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: source}}
		Expect(k8sClient.Create(context.Background(), rival)).To(Succeed())
		lost := definitionWebhook(rival, workflowsv1alpha1.ReasonSlugConflict)
		Expect(lost.Message).To(ContainSubstring("in another namespace"))
		Expect(lost.Message).NotTo(ContainSubstring(ns), "another tenant's namespace stays out of the status")
		Expect(send(github(slug, "tenant-value", "t-2", issueBody(2))).run().Namespace).To(Equal(ns))
		definitionWebhook(def, "")

		By("a definition in a namespace the operator has not granted the slug")
		ungranted := createNamespace(unique(ungrantedPrefix + "hook"))
		stranger := &workflowsv1alpha1.WorkflowDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ungranted, Name: "stranger"},
			Spec: workflowsv1alpha1.WorkflowDefinitionSpec{Source: strings.ReplaceAll(source, slug, unique("free-slug"))}}
		Expect(k8sClient.Create(context.Background(), stranger)).To(Succeed())
		Expect(definitionWebhook(stranger, workflowsv1alpha1.ReasonSlugNotGranted).Message).To(ContainSubstring("--webhook-slug-grants"))
	})
})
