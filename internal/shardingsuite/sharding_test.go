package shardingsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// startReplicas starts replicas with the given shard names, stops them when the spec ends, and
// waits until each sees all of them on the ring.
func startReplicas(shards ...string) []*replica {
	out := make([]*replica, len(shards))
	for i, s := range shards {
		out[i] = startReplica(s)
		DeferCleanup(out[i].stop)
	}
	awaitRing(out, shards...)
	return out
}

// awaitRing waits until every replica sees exactly members on the ring.
func awaitRing(replicas []*replica, members ...string) {
	for _, r := range replicas {
		Eventually(func() []string { return r.shards.Ring().Members() }, 20*time.Second, 50*time.Millisecond).
			Should(ConsistOf(members), "replica %s sees the ring", r.name)
	}
}

// newRun builds a run of workflow with input, created without a shard (as kubectl would).
func newRun(ns, name, workflow string, input any) *workflowsv1alpha1.WorkflowRun {
	raw, err := json.Marshal(input)
	Expect(err).NotTo(HaveOccurred())
	return &workflowsv1alpha1.WorkflowRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       workflowsv1alpha1.WorkflowRunSpec{WorkflowName: workflow, Input: &apiextensionsv1.JSON{Raw: raw}},
	}
}

// createRuns creates n runs of workflow named prefix-i with k8sClient and returns their names.
func createRuns(ns, prefix, workflow string, n int, input any) []string {
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%02d", prefix, i)
		Expect(k8sClient.Create(context.Background(), newRun(ns, names[i], workflow, input))).To(Succeed())
	}
	return names
}

// awaitPhase waits until every named run is in phase and returns them.
func awaitPhase(ns string, names []string, phase workflowsv1alpha1.RunPhase, within time.Duration) []*workflowsv1alpha1.WorkflowRun {
	runs := make([]*workflowsv1alpha1.WorkflowRun, len(names))
	for i, name := range names {
		Eventually(func() workflowsv1alpha1.RunPhase {
			runs[i] = getRun(ns, name)
			return runs[i].Status.Phase
		}, within, 100*time.Millisecond).Should(Equal(phase), "run %s", name)
	}
	return runs
}

// outputOf decodes a trail run's output: the replica that executed each step.
func outputOf(run *workflowsv1alpha1.WorkflowRun) []string {
	var out []string
	Expect(run.Status.Output).NotTo(BeNil(), "run %s has no output", run.Name)
	Expect(json.Unmarshal(run.Status.Output.Raw, &out)).To(Succeed())
	return out
}

// shardOf is the run's shard label.
func shardOf(run client.Object) string { return run.GetLabels()[workflowsv1alpha1.LabelShard] }

// expectEachStepOnce checks that every step of a trail run of steps steps ran exactly once,
// and returns the replicas that ran them.
func expectEachStepOnce(ns, run string, steps int) []string {
	var who []string
	for i := range steps {
		ran := ledger.of(ns, run, fmt.Sprintf("s-%d", i))
		Expect(ran).To(HaveLen(1), "step s-%d of run %s ran %v", i, run, ran)
		who = append(who, ran[0])
	}
	return who
}

// journalCount counts the entries of run's journal named name.
func journalCount(run *workflowsv1alpha1.WorkflowRun, name string) int {
	n := 0
	for _, e := range run.Status.Journal {
		if e.Name == name {
			n++
		}
	}
	return n
}

var _ = Describe("Runs spread over sharded replicas", func() {
	It("assigns runs created without a shard, executes each on its shard, and shows the shards as leases", func() {
		ns := createNamespace("spread")
		replicas := startReplicas("a", "b")
		names := createRuns(ns, "trail", "trail", 12, trailInput{Steps: 2, NapMillis: 200})
		runs := awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 60*time.Second)
		count := map[string]int{}
		for _, run := range runs {
			shard := shardOf(run)
			Expect(shard).To(BeElementOf("a", "b"), "run %s", run.Name)
			Expect(outputOf(run)).To(Equal([]string{shard, shard}), "run %s ran on its shard", run.Name)
			Expect(expectEachStepOnce(ns, run.Name, 2)).To(Equal([]string{shard, shard}))
			count[shard]++
			Expect(replicas[0].ctrls.Runs.Executes(run)).To(Equal(shard == "a"), "replica a executes (eagerly) only the runs of its shard")
		}
		Expect(count["a"]).To(BeNumerically(">=", 5), "bounded loads: at most ceil(1.02 × 6) = 7 of 12 runs on one shard; got %v", count)
		Expect(count["b"]).To(BeNumerically(">=", 5), "bounded loads: %v", count)

		By("labelling the runs a replica creates itself before they exist")
		run := newRun(ns, "placed", "trail", trailInput{Steps: 1})
		Expect(replicas[1].mgr.GetClient().Create(context.Background(), run)).To(Succeed())
		Expect(shardOf(run)).To(BeElementOf("a", "b"))

		By("listing the shards as leases of the ring")
		var leases coordinationv1.LeaseList
		Expect(k8sClient.List(context.Background(), &leases, client.InNamespace(leaseNamespace), client.HasLabels{workflowsv1alpha1.LabelRing})).To(Succeed())
		holders := map[string]string{}
		for _, l := range leases.Items {
			if l.Spec.HolderIdentity != nil {
				holders[l.Name] = *l.Spec.HolderIdentity
			}
		}
		Expect(holders).To(HaveKeyWithValue("a", HavePrefix("a_")))
		Expect(holders).To(HaveKeyWithValue("b", HavePrefix("b_")))
	})

	It("executes a burst of runs evenly: each of three replicas within ±5 % of a third, counted by executions", func() {
		ns := createNamespace("burst")
		startReplicas("a", "b", "c")
		// 120 runs created at once, as kubectl apply of a list would: the sharder's informer
		// holds many of them unassigned before it places the first. The walks of these names
		// start on a, b and c 52, 39 and 29 times: a capacity counted over every run in sight
		// would let a fill with its own and leave c short.
		names := make([]string, 120)
		var wg sync.WaitGroup
		for w := range 12 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for i := w; i < len(names); i += 12 {
					names[i] = fmt.Sprintf("even-%03d", i)
					Expect(k8sClient.Create(context.Background(), newRun(ns, names[i], "trail", trailInput{Steps: 2, NapMillis: 1000}))).To(Succeed())
				}
			}()
		}
		wg.Wait()
		awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 90*time.Second)
		executed := map[string]int{}
		for _, name := range names {
			for _, replica := range ledger.of(ns, name, "s-1") {
				executed[replica]++
			}
		}
		GinkgoWriter.Printf("runs executed to their end by each replica: %v\n", executed)
		Expect(executed).To(HaveLen(3), "every replica executed runs: %v", executed)
		for replica, n := range executed {
			Expect(n).To(BeNumerically("~", 40, 2), "replica %s executed %d of 120 runs (±5 %% of 40 is 38 to 42): %v", replica, n, executed)
		}
	})

	It("moves the runs of a replica that stops to the others, between executions", func() {
		ns := createNamespace("stop")
		replicas := startReplicas("a", "b")
		names := createRuns(ns, "trail", "trail", 10, trailInput{Steps: 3, NapMillis: 1500})
		runs := awaitPhase(ns, names, workflowsv1alpha1.PhaseSleeping, 30*time.Second)
		var onB []string
		for _, run := range runs {
			if shardOf(run) == "b" {
				onB = append(onB, run.Name)
			}
		}
		Expect(onB).NotTo(BeEmpty())
		replicas[1].stop()
		for _, run := range awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 60*time.Second) {
			who := expectEachStepOnce(ns, run.Name, 3)
			if slices.Contains(onB, run.Name) {
				Expect(shardOf(run)).To(Equal("a"), "run %s moved off the stopped replica", run.Name)
				Expect(who[0]).To(Equal("b"))
				Expect(who[2]).To(Equal("a"))
			}
		}
	})

	It("moves the runs of a replica killed while it runs the sharder within the lease plus 5 s", func() {
		ns := createNamespace("kill")
		a := startReplica("a", replicaOptions{crashes: true})
		DeferCleanup(func() {
			if a.lease != nil {
				a.kill()
			}
		})
		Eventually(a.mgr.Elected(), 20*time.Second).Should(BeClosed(), "replica a leads, so it runs the sharder")
		b := startReplica("b")
		DeferCleanup(b.stop)
		awaitRing([]*replica{a, b}, "a", "b")
		names := createRuns(ns, "trail", "trail", 10, trailInput{Steps: 2, NapMillis: 4000})
		var onA []string
		for _, run := range awaitPhase(ns, names, workflowsv1alpha1.PhaseSleeping, 30*time.Second) {
			if shardOf(run) == "a" {
				onA = append(onA, run.Name)
			}
		}
		Expect(onA).NotTo(BeEmpty())

		killed := time.Now()
		a.kill()
		a.lease = nil
		// b must win the leader's lease once a's expired, start the sharder, and move every run
		// of a's expired shard lease to itself.
		bound := leaseDuration + 5*time.Second
		Eventually(func() []string {
			var stranded []string
			for _, name := range onA {
				if shardOf(getRun(ns, name)) != "b" {
					stranded = append(stranded, name)
				}
			}
			return stranded
		}, bound, 50*time.Millisecond).Should(BeEmpty(), "the dead replica's runs are on b within the lease plus 5 s")
		GinkgoWriter.Printf("the killed replica's %d runs were on b %s after the kill (lease %s)\n", len(onA), time.Since(killed).Round(time.Millisecond), leaseDuration)
		Expect(time.Since(killed)).To(BeNumerically(">=", leaseDuration-retryPeriod), "not before the lease expired: a live replica is never robbed")
		for _, run := range awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 60*time.Second) {
			who := expectEachStepOnce(ns, run.Name, 2)
			if slices.Contains(onA, run.Name) {
				Expect(who).To(Equal([]string{"a", "b"}), "run %s resumed on b", run.Name)
			}
		}
	})

	It("gives a replica that joins its share: runs are drained and handed over between executions", func() {
		ns := createNamespace("join")
		a := startReplica("a")
		DeferCleanup(a.stop)
		awaitRing([]*replica{a}, "a")
		names := createRuns(ns, "trail", "trail", 20, trailInput{Steps: 3, NapMillis: 3000})
		awaitPhase(ns, names, workflowsv1alpha1.PhaseSleeping, 30*time.Second)
		b := startReplica("b")
		DeferCleanup(b.stop)
		moved := 0
		for _, run := range awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 60*time.Second) {
			who := expectEachStepOnce(ns, run.Name, 3)
			Expect(who[0]).To(Equal("a"))
			if shardOf(run) == "b" {
				moved++
				Expect(who[2]).To(Equal("b"), "run %s ends on the shard it was handed to", run.Name)
			}
		}
		// 20 runs over two shards: each may hold ceil(1.02 × 10) = 11, so a drains 9.
		Expect(moved).To(BeNumerically(">=", 8), "runs handed to the new replica")
	})

	It("records each step once although two replicas believe they own the run at the same time", func() {
		ns := createNamespace("overlap")
		// Two replicas of shard x without leases: as when a replica that lost its lease has not
		// noticed yet while the sharder gave its runs to another.
		for _, tag := range []string{"x1", "x2"} {
			r := startReplica("x", replicaOptions{noLease: true, tag: tag})
			DeferCleanup(r.stop)
		}
		run := newRun(ns, "both", "meet", meetInput{WithinMillis: 20000})
		run.Labels = map[string]string{workflowsv1alpha1.LabelShard: "x"}
		Expect(k8sClient.Create(context.Background(), run)).To(Succeed())
		awaitPhase(ns, []string{"both"}, workflowsv1alpha1.PhaseSucceeded, 60*time.Second)
		Expect(ledger.of(ns, "both", "meet")).To(ConsistOf("x1", "x2"), "both replicas executed the step at once")
		// Both executions returned together; wait until the loser's write was refused, then read.
		Eventually(func() int { return ledger.inFlight(ns, "both", "meet") + ledger.inFlight(ns, "both", "after") }, 10*time.Second).Should(BeZero())
		Consistently(func() []string { return ledger.of(ns, "both", "meet") }, time.Second).Should(HaveLen(2), "no third execution")
		done := getRun(ns, "both")
		Expect(journalCount(done, "meet")).To(Equal(1), "the step is recorded once")
		Expect(journalCount(done, "after")).To(Equal(1), "the next step is recorded once")
		var out []string
		Expect(json.Unmarshal(done.Status.Output.Raw, &out)).To(Succeed())
		Expect(out[0]).To(BeElementOf("x1", "x2"))
		for _, e := range done.Status.Journal {
			if e.Name == "meet" {
				Expect(e.Attempts).To(Equal(int32(1)))
				Expect(e.Result.Raw).To(MatchJSON(fmt.Sprintf("%q", out[0])), "the output replays the recorded result")
			}
		}
	})
})

var _ = Describe("Everything follows the run", func() {
	It("wakes waiting runs on their shards when their events arrive", func() {
		ns := createNamespace("events")
		startReplicas("a", "b")
		names := make([]string, 6)
		for i := range names {
			names[i] = fmt.Sprintf("waiter-%d", i)
			Expect(k8sClient.Create(context.Background(), newRun(ns, names[i], "waiter", fmt.Sprintf("id-%d", i)))).To(Succeed())
		}
		runs := awaitPhase(ns, names, workflowsv1alpha1.PhaseWaiting, 30*time.Second)
		shards := map[string]bool{}
		for i, run := range runs {
			shards[shardOf(run)] = true
			Expect(k8sClient.Create(context.Background(), &workflowsv1alpha1.WorkflowEvent{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("ev-%d", i)},
				Spec:       workflowsv1alpha1.WorkflowEventSpec{Type: "sharding.test", CorrelationID: fmt.Sprintf("id-%d", i)},
			})).To(Succeed())
		}
		Expect(shards).To(HaveLen(2), "the waiting runs are on both shards")
		for _, run := range awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 30*time.Second) {
			Expect(ledger.of(ns, run.Name, "after")).To(Equal([]string{shardOf(run)}))
		}
		// Each event's status, which only the elected replica writes, lists its consumer
		// whichever shard executed it.
		for i, name := range names {
			Eventually(func(g Gomega) []string {
				ev := &workflowsv1alpha1.WorkflowEvent{}
				g.Expect(k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("ev-%d", i)}, ev)).To(Succeed())
				var runs []string
				for _, c := range ev.Status.ConsumedBy {
					runs = append(runs, c.Run)
				}
				return runs
			}, 10*time.Second).Should(Equal([]string{name}))
		}
	})

	It("runs a parent's children on several shards and wakes the parent when they finish", func() {
		ns := createNamespace("children")
		startReplicas("a", "b")
		children := make([]trailInput, 6)
		for i := range children {
			children[i] = trailInput{Steps: 2, NapMillis: 500}
		}
		Expect(k8sClient.Create(context.Background(), newRun(ns, "parent", "parent", children))).To(Succeed())
		parent := awaitPhase(ns, []string{"parent"}, workflowsv1alpha1.PhaseSucceeded, 60*time.Second)[0]
		var kids workflowsv1alpha1.WorkflowRunList
		Expect(k8sClient.List(context.Background(), &kids, client.InNamespace(ns), client.MatchingLabels{workflowsv1alpha1.LabelParentRun: "parent"})).To(Succeed())
		Expect(kids.Items).To(HaveLen(6))
		shards := map[string]bool{}
		for i := range kids.Items {
			shards[shardOf(&kids.Items[i])] = true
		}
		Expect(shards).To(HaveLen(2), "the children run on both shards; the parent is on %s", shardOf(parent))
	})

	It("moves an agent turn with its run, and the run finishes on its new shard once the turn is answered", func() {
		ns := createNamespace("turns")
		replicas := startReplicas("a", "b")
		names := make([]string, 6)
		for i := range names {
			names[i] = fmt.Sprintf("asker-%d", i)
			Expect(k8sClient.Create(context.Background(), newRun(ns, names[i], "asker", "hello?"))).To(Succeed())
		}
		runs := awaitPhase(ns, names, workflowsv1alpha1.PhaseWaiting, 30*time.Second)
		turnOf := func(run string) *workflowsv1alpha1.AgentRun {
			var turns workflowsv1alpha1.AgentRunList
			Expect(k8sClient.List(context.Background(), &turns, client.InNamespace(ns), client.MatchingLabels{workflowsv1alpha1.LabelRun: run})).To(Succeed())
			Expect(turns.Items).To(HaveLen(1))
			return &turns.Items[0]
		}
		var onB []string
		for _, run := range runs {
			Expect(shardOf(turnOf(run.Name))).To(Equal(shardOf(run)), "the turn of %s is on its run's shard", run.Name)
			if shardOf(run) == "b" {
				onB = append(onB, run.Name)
			}
		}
		Expect(onB).NotTo(BeEmpty())
		replicas[1].stop()
		for _, name := range onB {
			Eventually(func() string { return shardOf(turnOf(name)) }, 30*time.Second, 100*time.Millisecond).Should(Equal("a"), "the turn of %s follows its run", name)
		}
		for _, name := range names {
			turn := turnOf(name)
			turn.Status = workflowsv1alpha1.AgentRunStatus{Phase: workflowsv1alpha1.AgentSucceeded, Result: "yes", Backend: "external"}
			Expect(k8sClient.Status().Update(context.Background(), turn)).To(Succeed())
		}
		for _, run := range awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 30*time.Second) {
			Expect(ledger.of(ns, run.Name, "after")).To(Equal([]string{"a"}), "run %s finished on a", run.Name)
		}
	})

	It("lets the web console of one replica list the runs of every shard", func() {
		ns := createNamespace("console")
		replicas := startReplicas("a", "b")
		index := runindex.New()
		ctx, cancel := context.WithCancel(context.Background())
		DeferCleanup(cancel)
		go func() { _ = index.Attach(ctx, replicas[0].ctrls.RunView) }()
		names := createRuns(ns, "listed", "trail", 8, trailInput{Steps: 1})
		runs := awaitPhase(ns, names, workflowsv1alpha1.PhaseSucceeded, 30*time.Second)
		Expect(slices.ContainsFunc(runs, func(r *workflowsv1alpha1.WorkflowRun) bool { return shardOf(r) == "b" })).To(BeTrue())
		Eventually(func() []workflowsv1alpha1.RunPhase {
			var phases []workflowsv1alpha1.RunPhase
			for _, name := range names {
				if r, ok := index.Get(ns, name); ok {
					phases = append(phases, r.Phase)
				}
			}
			return phases
		}, 10*time.Second).Should(And(HaveLen(8), HaveEach(workflowsv1alpha1.PhaseSucceeded)))
	})
})
