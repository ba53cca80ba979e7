package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/durable"
)

// parallelInput is the input of test_parallel: its branches meet at a barrier keyed by Key,
// which opens only once all of them are running.
type parallelInput struct {
	Key      string `json:"key"`
	Branches int    `json:"branches"`
}

// barriers hold the branches of a test_parallel run until all of them have started.
var barriers = struct {
	sync.Mutex
	m map[string]*sync.WaitGroup
}{m: map[string]*sync.WaitGroup{}}

func barrier(key string, n int) *sync.WaitGroup {
	barriers.Lock()
	defer barriers.Unlock()
	if barriers.m[key] == nil {
		barriers.m[key] = &sync.WaitGroup{}
		barriers.m[key].Add(n)
	}
	return barriers.m[key]
}

// primitiveWorkflows exercise Parallel and a named AgentTurn through the controller.
func primitiveWorkflows() []durable.Workflow {
	return []durable.Workflow{
		durable.Define("test_parallel", func(ctx *durable.Context, in parallelInput) ([]string, error) {
			branches := make([]durable.Branch[string], in.Branches)
			for i := range branches {
				name := fmt.Sprintf("branch-%d", i)
				branches[i] = durable.Branch[string]{Name: name, Fn: func(c context.Context) (string, error) {
					countCall(in.Key, name)
					wg := barrier(in.Key, in.Branches)
					wg.Done()
					met := make(chan struct{})
					go func() { wg.Wait(); close(met) }()
					select {
					case <-met: // every branch is running: they run at once
					case <-time.After(10 * time.Second):
						return "", fmt.Errorf("%s ran alone: the other branches never started beside it", name)
					case <-c.Done():
						return "", c.Err()
					}
					return name + "-done", nil
				}}
			}
			return durable.Parallel(ctx, branches, durable.WithRetry(durable.RetryPolicy{MaxAttempts: 1}))
		}),
		durable.Define("test_named_turns", func(ctx *durable.Context, in struct {
			Prompt string `json:"prompt"`
		}) ([]string, error) {
			triage, err := durable.AgentTurn(ctx, "triage: "+in.Prompt, "", durable.WithTurnName("triage"))
			if err != nil {
				return nil, err
			}
			reply, err := durable.AgentTurn(ctx, "reply: "+in.Prompt, "", durable.WithTurnName("reply"))
			return []string{triage, reply}, err
		}),
	}
}

var _ = Describe("Parallel steps", func() {
	It("run their branches at once, journal each under its name, and run none again", func() {
		key := rand.String(8)
		run := waitPhase(createRun("test_parallel", parallelInput{Key: key, Branches: 3}), workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(string(run.Status.Output.Raw)).To(Equal(`["branch-0-done","branch-1-done","branch-2-done"]`))
		var names []string
		for _, e := range run.Status.Journal {
			Expect(e.Kind).To(Equal(workflowsv1alpha1.EntryKind("Step")))
			Expect(e.State).To(Equal(workflowsv1alpha1.EntryState("Completed")))
			names = append(names, e.Name)
		}
		Expect(names).To(ConsistOf("branch-0", "branch-1", "branch-2"))
		for i := range 3 {
			Expect(callCount(key, fmt.Sprintf("branch-%d", i))).To(Equal(1))
		}
	})
})

var _ = Describe("A named agent turn", func() {
	It("is journalled and started under the name the handler gave it", func() {
		useAgents(testAgents(true))
		prompt := "named " + rand.String(6)
		run := waitPhase(createRun("test_named_turns", map[string]string{"prompt": prompt}), workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(string(run.Status.Output.Raw)).To(Equal(fmt.Sprintf(`["echo: triage: %s","echo: reply: %s"]`, prompt, prompt)))
		var names []string
		for _, e := range run.Status.Journal {
			if e.Kind == workflowsv1alpha1.EntryKind("Agent") {
				names = append(names, e.Name)
			}
		}
		Expect(names).To(ContainElements("triage", "reply"))

		var turns workflowsv1alpha1.AgentRunList
		Expect(k8sClient.List(context.Background(), &turns, client.InNamespace(run.Namespace),
			client.MatchingLabels{workflowsv1alpha1.LabelRun: run.Name})).To(Succeed())
		Expect(turns.Items).To(HaveLen(2))
		var turnNames []string
		for _, t := range turns.Items {
			turnNames = append(turnNames, t.Name)
		}
		Expect(turnNames).To(ConsistOf(ContainSubstring("-triage-"), ContainSubstring("-reply-")), "each AgentRun is named after its turn")
	})
})
