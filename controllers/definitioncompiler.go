package controllers

import (
	"errors"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/internal/limits"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// DefaultDefinitionCompileRate is how often one namespace's definitions are compiled again
// after edits, on each replica: one a second, with a burst of 100 (config/quota's count of
// definitions per namespace).
var DefaultDefinitionCompileRate = limits.Rate{PerSecond: 1, Burst: 100}

// definitionCompiler compiles the definitions' bundles for the reconciler. It compiles a
// definition once per content, so that an edit that leaves its source and modules as they were
// (a label, an annotation, an edit undone) compiles nothing, and a namespace's compiles at its
// rate, so that a tenant who edits definitions in a loop spends at most that much of every
// replica's CPU (and of the load probes behind it); edits made meanwhile are compiled together,
// as the definition is when its turn comes. Its methods are safe for concurrent use.
type definitionCompiler struct {
	// config is the compile configuration of definitions.
	config func() *workflowfile.Config
	// rate is each namespace's bucket of compiles.
	rate *limits.Buckets

	mu   sync.Mutex
	last map[types.NamespacedName]compiledDefinition
}

// compiledDefinition is a definition's last compile: the digest of the bundle and the result.
type compiledDefinition struct {
	digest   string
	workflow *workflowfile.Workflow
	err      error
}

// newDefinitionCompiler returns a compiler at rate (DefaultDefinitionCompileRate when zero).
func newDefinitionCompiler(config func() *workflowfile.Config, rate limits.Rate) *definitionCompiler {
	if rate.PerSecond == 0 {
		rate = DefaultDefinitionCompileRate
	}
	return &definitionCompiler{config: config, rate: limits.NewBuckets(rate, 0), last: map[types.NamespacedName]compiledDefinition{}}
}

// compile returns the definition's workflow, or why it does not load. With atRate, a
// definition whose content changed waits for its namespace's turn: wait says how long, and
// nothing is compiled meanwhile.
func (c *definitionCompiler) compile(def *workflowsv1alpha1.WorkflowDefinition, atRate bool, now time.Time) (w *workflowfile.Workflow, wait time.Duration, err error) {
	key := types.NamespacedName{Namespace: def.Namespace, Name: def.Name}
	bundle := DefinitionBundle(def)
	digest := bundle.Digest()
	c.mu.Lock()
	last, ok := c.last[key]
	c.mu.Unlock()
	if ok && last.digest == digest {
		return last.workflow, 0, last.err
	}
	if atRate {
		if ok, wait := c.rate.Allow(def.Namespace, now); !ok {
			return nil, wait, nil
		}
	}
	w, err = workflowfile.CompileBundle(bundle, c.config())
	if deterministic(err) {
		c.mu.Lock()
		c.last[key] = compiledDefinition{digest: digest, workflow: w, err: err}
		c.mu.Unlock()
	}
	return w, 0, err
}

// deterministic reports whether compiling the same bundle again gives err again: success, or
// a load error that its code makes (a syntax error, the memory bound), not one a load probe
// that did not answer in time may have made.
func deterministic(err error) bool {
	var le *workflowfile.LoadError
	return err == nil || errors.As(err, &le) && le.Reason != workflowsv1alpha1.ReasonLoadFailed
}

// forget drops a deleted definition's last compile.
func (c *definitionCompiler) forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.last, key)
}
