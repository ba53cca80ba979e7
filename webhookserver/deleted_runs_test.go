package webhookserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/ledger"
)

var _ = Describe("Deliveries whose run was deleted", func() {
	It("are answered 200 with the run marked deleted and start nothing, under altered unsigned headers too, once kubectl deleted the run", func() {
		ns, slug := newNamespace(), unique("deleted")
		ep := readyEndpoint(ns, slug, "deleted-secret")
		body := issueBody(51)
		first := send(github(slug, "deleted-secret", "d-1", body))
		Expect(first.status).To(Equal(http.StatusAccepted))
		id := first.run().ID
		Expect(k8sClient.Delete(context.Background(), &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: id}})).To(Succeed())
		expectRunGone(ns, id)
		expectInLedger(operatorNamespace, ns, id)

		By("answering the provider's redelivery, and a replay under another event and delivery id, with the deleted run")
		duplicatesBefore := testutil.ToFloat64(webhookDeliveries.WithLabelValues(slug, outcomeDuplicate))
		replayed := githubHeader("deleted-secret", "d-forged-2", body)
		replayed.Set("X-GitHub-Event", "push")
		for _, d := range []delivery{github(slug, "deleted-secret", "d-1", body), {slug: slug, header: replayed, body: body}} {
			expectDeletedRun(send(d), id, ns)
		}
		Expect(runsOf(ns, slug)).To(BeEmpty(), "a delivery of a deleted run started a new one")
		Expect(testutil.ToFloat64(webhookDeliveries.WithLabelValues(slug, outcomeDuplicate)) - duplicatesBefore).To(BeEquivalentTo(2))
		Eventually(func() int64 { return getEndpoint(ep).Status.Deliveries.Duplicates }, waitFor, pollAt).Should(BeEquivalentTo(2))

		By("accepting a distinct delivery")
		Expect(send(github(slug, "deleted-secret", "d-3", issueBody(52))).status).To(Equal(http.StatusAccepted))
		Expect(runsOf(ns, slug)).To(HaveLen(1))
	})

	It("are answered 200 with the run marked deleted once its TTL deleted the run, which the ledger held before the run was gone", func() {
		ttlCfg := serverCfg
		ttlCfg.WebhookRunTTL = time.Second
		shortLived := httptest.NewServer(New(ttlCfg).Handler())
		DeferCleanup(shortLived.Close)
		ns, slug := newNamespace(), unique("expired")
		readyEndpoint(ns, slug, "expired-secret")
		body := issueBody(61)
		first := send(delivery{server: shortLived.URL, slug: slug, header: githubHeader("expired-secret", "e-1", body), body: body})
		Expect(first.status).To(Equal(http.StatusAccepted))
		id := first.run().ID
		expectRunGone(ns, id)
		held, err := ledger.Holds(context.Background(), k8sClient, operatorNamespace, ns, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(held).To(BeTrue(), "the TTL deleted the run before the ledger held it")

		replayed := githubHeader("expired-secret", "e-forged-2", body)
		replayed.Set("X-GitHub-Event", "pull_request")
		expectDeletedRun(send(delivery{server: shortLived.URL, slug: slug, header: replayed, body: body}), id, ns)
		Expect(runsOf(ns, slug)).To(BeEmpty(), "a replay of a run the TTL deleted started a new one")
		Expect(send(delivery{server: shortLived.URL, slug: slug, header: githubHeader("expired-secret", "e-3", issueBody(62)), body: issueBody(62)}).status).
			To(Equal(http.StatusAccepted))
	})

	It("are forgotten past the retention: the ledger's pages are deleted, and the delivery starts a run again", func() {
		ledgerNS := newNamespace()
		var ahead atomic.Int64 // how far the spec's clock is ahead of the real one
		const retention = 48 * time.Hour
		own := ledger.New(ledger.Config{Namespace: ledgerNS, Retention: retention, Client: k8sClient, Reader: k8sClient,
			Logger: logf.Log.WithName("spec-ledger"), Clock: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
			FlushInterval: ledgerFlush, RefreshInterval: ledgerRefresh, PruneInterval: 200 * time.Millisecond})
		startLedger(own)
		cfg := serverCfg
		cfg.DeletedRuns = own
		server := httptest.NewServer(New(cfg).Handler())
		DeferCleanup(server.Close)

		ns, slug := newNamespace(), unique("retained")
		readyEndpoint(ns, slug, "retained-secret")
		body := issueBody(71)
		deliver := func() response {
			return send(delivery{server: server.URL, slug: slug, header: githubHeader("retained-secret", "r-1", body), body: body})
		}
		first := deliver()
		Expect(first.status).To(Equal(http.StatusAccepted))
		id := first.run().ID
		Expect(k8sClient.Delete(context.Background(), &workflowsv1alpha1.WorkflowRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: id}})).To(Succeed())
		expectRunGone(ns, id)
		expectInLedger(ledgerNS, ns, id)
		expectDeletedRun(deliver(), id, ns)
		pages := ledgerPages(ledgerNS)
		Expect(pages).NotTo(BeEmpty())

		By("moving the clock past the retention of the day's pages")
		ahead.Store(int64(retention + 25*time.Hour))
		// Webhook runs that other specs leave behind may be deleted meanwhile, onto pages of
		// the new day: only the pages of the first day must go.
		Eventually(func(g Gomega) {
			left := pageNames(ledgerPages(ledgerNS))
			for _, name := range pageNames(pages) {
				g.Expect(left).NotTo(ContainElement(name), "a page past the retention was not deleted")
			}
		}, waitFor, pollAt).Should(Succeed())
		Expect(ledger.Holds(context.Background(), k8sClient, ledgerNS, ns, id)).To(BeFalse())
		Expect(deliver().status).To(Equal(http.StatusAccepted), "a delivery past the retention did not start a run")
	})
})

// startLedger runs l and its Keeper (on the manager's cache of runs) until the spec ends.
func startLedger(l *ledger.Ledger) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, start := range []func(context.Context) error{l.Start, l.Keeper(runCache).Start} {
		go func() {
			defer GinkgoRecover()
			defer func() { done <- struct{}{} }()
			Expect(start(ctx)).To(Succeed())
		}()
	}
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(Receive())
		Eventually(done).Should(Receive())
	})
}

// expectRunGone waits until the API server no longer has the run ns/name.
func expectRunGone(ns, name string) {
	GinkgoHelper()
	Eventually(func() bool {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &workflowsv1alpha1.WorkflowRun{})
		return apierrors.IsNotFound(err)
	}, waitFor, pollAt).Should(BeTrue(), "the run was not deleted")
}

// expectInLedger waits until the ledger in ledgerNS holds the run ns/name, and then for the
// servers' memory of it to follow.
func expectInLedger(ledgerNS, ns, name string) {
	GinkgoHelper()
	Eventually(func() (bool, error) {
		return ledger.Holds(context.Background(), k8sClient, ledgerNS, ns, name)
	}, waitFor, pollAt).Should(BeTrue(), "the deleted run never reached the ledger")
	time.Sleep(2 * ledgerRefresh)
}

// expectDeletedRun checks the answer to a delivery whose run was deleted: 200, naming the run,
// a duplicate whose run is deleted.
func expectDeletedRun(r response, id, ns string) {
	GinkgoHelper()
	Expect(r.status).To(Equal(http.StatusOK), string(r.body))
	got := r.run()
	Expect(got.ID).To(Equal(id))
	Expect(got.Namespace).To(Equal(ns))
	Expect(got.Duplicate).To(BeTrue())
	Expect(got.RunDeleted).To(BeTrue(), string(r.body))
}

// pageNames are the names of pages.
func pageNames(pages []corev1.ConfigMap) []string {
	names := make([]string, 0, len(pages))
	for _, p := range pages {
		names = append(names, p.Name)
	}
	return names
}

// ledgerPages lists the ConfigMaps of the ledger in ns.
func ledgerPages(ns string) []corev1.ConfigMap {
	var list corev1.ConfigMapList
	Expect(k8sClient.List(context.Background(), &list, client.InNamespace(ns), client.HasLabels{workflowsv1alpha1.LabelDeliveryLedger})).To(Succeed())
	return list.Items
}
