package restapi_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// The start latency of hello with and without eager start, for docs/rest-api.md: the time from
// sending the POST to the run being Succeeded. With eager start that is the POST's answer;
// without, the moment a watch reports the run Succeeded (the best a client can do). Runs only
// with CENTAUR_MEASURE_EAGER=1; measure without -race for numbers worth publishing:
//
//	CENTAUR_MEASURE_EAGER=1 KUBEBUILDER_ASSETS=$PWD/bin/k8s go test -count=1 -v ./webhookserver/restapi/ -ginkgo.focus=latency -ginkgo.v
var _ = Describe("start latency", Label("measure"), func() {
	It("is measured for hello, eager and not, with idle and with busy reconcile workers", func() {
		if os.Getenv("CENTAUR_MEASURE_EAGER") == "" {
			Skip("set CENTAUR_MEASURE_EAGER=1 to measure")
		}
		const n, ns = 50, "measure"
		wc, err := client.NewWithWatch(restCfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		w, err := wc.Watch(context.Background(), &workflowsv1alpha1.WorkflowRunList{}, client.InNamespace(ns))
		Expect(err).NotTo(HaveOccurred())
		defer w.Stop()
		succeeded := make(chan string, 64)
		go func() {
			for ev := range w.ResultChan() {
				if run, ok := ev.Object.(*workflowsv1alpha1.WorkflowRun); ok && ev.Type == watch.Modified && run.Status.Phase == workflowsv1alpha1.PhaseSucceeded {
					succeeded <- run.Name
				}
			}
		}()
		// awaitSucceeded waits for the watch to have reported every run of ids Succeeded.
		seen := map[string]bool{}
		awaitSucceeded := func(ids ...string) {
			for _, id := range ids {
				for !seen[id] {
					select {
					case name := <-succeeded:
						seen[name] = true
					case <-time.After(30 * time.Second):
						Fail(fmt.Sprintf("run %s did not succeed", id))
					}
				}
			}
		}
		post := func(workflow, input string, eager bool) restapi.RunDetail {
			return as[restapi.RunDetail](curlPost("/workflows/runs", adminKey, fmt.Sprintf(
				`{"workflow_name": %q, "input": %s, "namespace": %q, "eager_start": %t}`, workflow, input, ns, eager)))
		}
		// sample measures one hello run, behind backlog slow runs that occupy the reconcile
		// workers (the suite's manager has 8).
		sample := func(eager bool, backlog int) time.Duration {
			var slow []string
			for range backlog {
				slow = append(slow, post("slow", `{"millis": 250}`, false).ID)
			}
			start := time.Now()
			run := post("hello", `{"name": "Ada"}`, eager)
			var took time.Duration
			if eager {
				took = time.Since(start)
				Expect(run.Status).To(Equal("Succeeded"))
				slow = append(slow, run.ID)
			} else {
				awaitSucceeded(run.ID)
				took = time.Since(start)
			}
			awaitSucceeded(slow...)
			return took
		}
		report := func(name string, d []time.Duration) {
			slices.Sort(d)
			round := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
			fmt.Fprintf(GinkgoWriter, "%-40s n=%d p50=%v p99=%v max=%v\n", name, len(d), round(d[len(d)/2]), round(d[(len(d)*99+99)/100-1]), round(d[len(d)-1]))
		}
		for _, backlog := range []int{0, 8} {
			sample(true, backlog) // warm up
			sample(false, backlog)
			var eager, watched []time.Duration
			for range n {
				eager = append(eager, sample(true, backlog))
				watched = append(watched, sample(false, backlog))
			}
			report(fmt.Sprintf("eager_start: true,  %d busy workers", backlog), eager)
			report(fmt.Sprintf("eager_start: false, %d busy workers", backlog), watched)
		}
	})
})
