package controllers

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflows"
)

// versionedReport is the workflow test_versioned as one release of the manager has it. Every
// release waits for a first event, fetches a page and waits for a second event; the release
// withGetVersion fetches from a new API under durable.GetVersion.
func versionedReport(withGetVersion bool) durable.Workflow {
	type input struct {
		Key string `json:"key"`
	}
	return durable.Define("test_versioned", func(ctx *durable.Context, in input) (string, error) {
		if _, err := durable.WaitForEvent[struct{}](ctx, "first", "versioned.first", in.Key); err != nil {
			return "", err
		}
		version := durable.DefaultVersion
		if withGetVersion {
			version = durable.GetVersion(ctx, "fetch-api", durable.DefaultVersion, 1)
		}
		fetch := func(name, page string) (string, error) {
			return durable.Step(ctx, name, func(context.Context) (string, error) {
				countCall(in.Key, name)
				return page, nil
			})
		}
		var page string
		var err error
		if version == durable.DefaultVersion {
			page, err = fetch("fetch", "old api")
		} else {
			page, err = fetch("fetch-v2", "new api")
		}
		if err != nil {
			return "", err
		}
		if _, err := durable.WaitForEvent[struct{}](ctx, "second", "versioned.second", in.Key); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s, version %d", page, version), nil
	})
}

// expectVersion checks that run's journal records version v of change, as GetVersion does.
func expectVersion(run *workflowsv1alpha1.WorkflowRun, change string, v int) {
	GinkgoHelper()
	marker := entry(run, change)
	Expect(marker.Kind).To(Equal(workflowsv1alpha1.EntryKind(engine.KindVersion)))
	Expect(marker.State).To(Equal(workflowsv1alpha1.EntryState(engine.StateCompleted)))
	Expect(marker.Result).NotTo(BeNil())
	Expect(string(marker.Result.Raw)).To(Equal(fmt.Sprint(v)))
}

// deployRelease restarts the manager with the suite's workflows and extra, as a rollout of a
// release that compiled extra in would.
func deployRelease(extra ...durable.Workflow) {
	GinkgoHelper()
	r := engine.NewRegistry()
	Expect(workflows.Register(r)).To(Succeed())
	Expect(r.Register(append(testWorkflows(), extra...)...)).To(Succeed())
	registry = r
	restartManager()
}

var _ = Describe("Changing a Go workflow with runs in flight (durable.GetVersion)", func() {
	It("keeps a run that went past the change on the old branch, and takes the new one in every other run", func() {
		suiteRegistry := registry
		DeferCleanup(func() {
			registry = suiteRegistry
			restartManager()
		})
		deployRelease(versionedReport(false))

		// On the old release: one run goes past the change, one waits before it.
		pastKey, beforeKey, newKey := "past-"+rand.String(6), "before-"+rand.String(6), "new-"+rand.String(6)
		past := createRun("test_versioned", map[string]string{"key": pastKey})
		before := createRun("test_versioned", map[string]string{"key": beforeKey})
		createEvent("versioned.first", pastKey, map[string]string{})
		Eventually(func(g Gomega) {
			g.Expect(getRun(past).Status.WaitingFor).To(Equal(engine.EventTarget("versioned.second", pastKey)))
		}, 15*time.Second, 50*time.Millisecond).Should(Succeed())
		waitPhase(before, workflowsv1alpha1.PhaseWaiting, 15*time.Second)
		Expect(callCount(pastKey, "fetch")).To(Equal(1))

		deployRelease(versionedReport(true))
		fresh := createRun("test_versioned", map[string]string{"key": newKey})
		for _, key := range []string{beforeKey, newKey} {
			createEvent("versioned.first", key, map[string]string{})
		}
		for _, key := range []string{pastKey, beforeKey, newKey} {
			createEvent("versioned.second", key, map[string]string{})
		}

		done := waitPhase(past, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
		Expect(outputOf(done)).To(MatchJSON(`"old api, version -1"`))
		Expect(callCount(pastKey, "fetch")).To(Equal(1), "the old branch's step replays from the journal")
		for _, e := range journalOf(done) {
			Expect(e.Kind).NotTo(Equal(workflowsv1alpha1.EntryKind(engine.KindVersion)), "an old run records no version")
		}

		for _, run := range []*workflowsv1alpha1.WorkflowRun{before, fresh} {
			done := waitPhase(run, workflowsv1alpha1.PhaseSucceeded, 20*time.Second)
			Expect(outputOf(done)).To(MatchJSON(`"new api, version 1"`))
			expectVersion(done, "fetch-api", 1)
		}
	})
})
