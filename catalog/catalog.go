// Package catalog answers which workflow a run executes. Workflows come from three places: Go
// code compiled into the manager (the engine.Registry), workflow files from WORKFLOW_DIRS
// (Python or Starlark, the administrator's, visible in every namespace their NAMESPACES
// allows, and preferred over a Go workflow of the same name), and WorkflowDefinitions (a tenant's, visible only in their own namespace and
// never shadowing the others). A run that started on a workflow file replays the revision it
// started with to its end, so the catalog also keeps revisions: it asks a RevisionStore to
// store each revision a run starts on, and compiles stored revisions again when the file has
// changed since.
//
// The package is plain Go; the controllers implement the RevisionStore over Kubernetes
// objects and feed the catalog from directories and WorkflowDefinition resources.
package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/pyworkflow"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// Source says where a workflow comes from.
type Source string

const (
	// SourceGo is a workflow compiled into the manager.
	SourceGo Source = "go"
	// SourceFile is a workflow file from WORKFLOW_DIRS.
	SourceFile Source = "file"
	// SourceDefinition is a WorkflowDefinition's source.
	SourceDefinition Source = "definition"
)

// Entry is one workflow as a namespace sees it.
type Entry struct {
	// Workflow is the runnable workflow.
	Workflow durable.Workflow
	// Source says where it comes from.
	Source Source
	// Revision identifies a workflow file's code; empty for Go workflows.
	Revision string
	// File is the file's path (WORKFLOW_DIRS) or "namespace/name" of its WorkflowDefinition.
	File string
	// Namespace is a definition's namespace; empty for workflows every namespace sees.
	Namespace string
	// Definition is the WorkflowDefinition's name, for definitions.
	Definition string
	// Created orders definitions that claim one name: the older one wins.
	Created time.Time
}

// Name is the workflow's name.
func (e Entry) Name() string { return e.Workflow.Name() }

// FileWorkflow is a workflow loaded from a file: Starlark (a WORKFLOW_DIRS file or a
// WorkflowDefinition's source, package workflowfile) or Python (a WORKFLOW_DIRS file, package
// pyworkflow). Runs record its revision and replay it to their end.
type FileWorkflow interface {
	durable.Workflow
	// Revision identifies the code: "<name>-<digest>".
	Revision() string
	// Bundle is the text the revision needs, to store it.
	Bundle() workflowfile.Bundle
	// File is the file's path relative to its directory.
	File() string
	// Language is "starlark" or "python".
	Language() string
	// InputFields lists the declared input fields; nil when the file declares none.
	InputFields() []workflowfile.InputField
	// Namespaces are the namespaces the file's NAMESPACES lets start it; nil for all.
	Namespaces() []string
}

// FileWorkflow returns the workflow file behind the entry, if it is one.
func (e Entry) FileWorkflow() (FileWorkflow, bool) {
	w, ok := e.Workflow.(FileWorkflow)
	return w, ok
}

// allows reports whether a run in namespace may start the entry: a file's NAMESPACES limits
// the namespaces that may.
func (e Entry) allows(namespace string) bool {
	fw, ok := e.FileWorkflow()
	if !ok || fw.Namespaces() == nil {
		return true
	}
	return slices.Contains(fw.Namespaces(), namespace)
}

// ErrRevisionNotFound is wrapped by RevisionStore.Load when no revision of that name is stored.
var ErrRevisionNotFound = errors.New("revision not found")

// RevisionStore keeps the bundles of revisions that runs started on.
type RevisionStore interface {
	// Save stores b as revision rev of workflow in namespace. Saving what is already stored
	// succeeds; a different bundle under the same name is an error.
	Save(ctx context.Context, namespace, workflow, rev string, b workflowfile.Bundle) error
	// Load returns the bundle stored as rev in namespace, or an error wrapping
	// ErrRevisionNotFound.
	Load(ctx context.Context, namespace, rev string) (workflowfile.Bundle, error)
}

// Options configure a catalog.
type Options struct {
	// Store keeps revisions; nil keeps none (runs then replay the current code).
	Store RevisionStore
	// OperatorNamespace is where revisions of WORKFLOW_DIRS files are stored.
	OperatorNamespace string
	// Trusted compiles WORKFLOW_DIRS files; Sandboxed compiles WorkflowDefinitions.
	Trusted, Sandboxed *workflowfile.Config
	// Python loads Python workflow files (WORKFLOW_DIRS only); nil leaves them unloaded.
	Python *pyworkflow.Loader
	// CompiledRevisions bounds how many old revisions stay compiled in memory; default 128.
	CompiledRevisions int
}

// Catalog is the manager's view of every workflow it can run. It is safe for concurrent use.
type Catalog struct {
	registry *engine.Registry
	opts     Options

	mu          sync.RWMutex
	files       map[string]Entry            // WORKFLOW_DIRS, by workflow name
	definitions map[string]map[string]Entry // namespace -> WorkflowDefinition name -> entry
	defsSynced  bool
	compiled    map[string]*compiledRevision // "namespace/revision" of old revisions
	saved       map[string]bool              // "namespace/revision" known to be stored
	listeners   []func()
}

// compiledRevision is an old revision kept compiled, with when it was last used.
type compiledRevision struct {
	workflow durable.Workflow
	used     time.Time
}

// New returns a catalog over the Go workflows of registry.
func New(registry *engine.Registry, opts Options) *Catalog {
	if opts.CompiledRevisions <= 0 {
		opts.CompiledRevisions = 128
	}
	return &Catalog{registry: registry, opts: opts, files: map[string]Entry{},
		definitions: map[string]map[string]Entry{}, compiled: map[string]*compiledRevision{}, saved: map[string]bool{}}
}

// Registry returns the Go workflows.
func (c *Catalog) Registry() *engine.Registry { return c.registry }

// OperatorNamespace is where the revisions of WORKFLOW_DIRS files are kept.
func (c *Catalog) OperatorNamespace() string { return c.opts.OperatorNamespace }

// Config returns the compile configuration of workflow files of origin.
func (c *Catalog) Config(origin workflowfile.Origin) *workflowfile.Config {
	if origin == workflowfile.OriginDefinition {
		return c.opts.Sandboxed
	}
	return c.opts.Trusted
}

// OnChange registers fn to be called, without the catalog's lock, whenever the set of file
// workflows or definitions changed.
func (c *Catalog) OnChange(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, fn)
}

// notify calls the change listeners.
func (c *Catalog) notify() {
	c.mu.RLock()
	listeners := slices.Clone(c.listeners)
	c.mu.RUnlock()
	for _, fn := range listeners {
		fn()
	}
}

// SetFiles replaces the WORKFLOW_DIRS workflows with files. Two files declaring one name is
// resolved by the caller (a later directory wins); here each name appears once.
func (c *Catalog) SetFiles(files []Entry) {
	next := make(map[string]Entry, len(files))
	for _, e := range files {
		e.Source = SourceFile
		next[e.Name()] = e
	}
	c.mu.Lock()
	c.files = next
	c.mu.Unlock()
	c.notify()
}

// SetDefinition registers (or replaces) the workflow of the WorkflowDefinition namespace/name.
// Whether it is visible is decided at lookup: see DefinitionConflict.
func (c *Catalog) SetDefinition(e Entry) {
	e.Source = SourceDefinition
	c.mu.Lock()
	if c.definitions[e.Namespace] == nil {
		c.definitions[e.Namespace] = map[string]Entry{}
	}
	c.definitions[e.Namespace][e.Definition] = e
	c.mu.Unlock()
	c.notify()
}

// RemoveDefinition forgets the WorkflowDefinition namespace/name (deleted, or no longer
// loading). Runs that started on it keep replaying their stored revision.
func (c *Catalog) RemoveDefinition(namespace, name string) {
	c.mu.Lock()
	_, existed := c.definitions[namespace][name]
	delete(c.definitions[namespace], name)
	if len(c.definitions[namespace]) == 0 {
		delete(c.definitions, namespace)
	}
	c.mu.Unlock()
	if existed {
		c.notify()
	}
}

// MarkDefinitionsSynced records that every WorkflowDefinition of the cluster has been seen
// once; until then a run whose workflow is unknown waits instead of failing.
func (c *Catalog) MarkDefinitionsSynced() {
	c.mu.Lock()
	c.defsSynced = true
	c.mu.Unlock()
}

// DefinitionsSynced reports whether MarkDefinitionsSynced was called.
func (c *Catalog) DefinitionsSynced() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.defsSynced
}

// Lookup returns the workflow a new run named name in namespace executes: a WORKFLOW_DIRS
// file (unless its NAMESPACES leaves namespace out), else a Go workflow, else the namespace's
// oldest WorkflowDefinition of that name.
func (c *Catalog) Lookup(namespace, name string) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lookupLocked(namespace, name)
}

func (c *Catalog) lookupLocked(namespace, name string) (Entry, bool) {
	if e, ok := c.files[name]; ok && e.allows(namespace) {
		return e, true
	}
	if w, ok := c.registry.Lookup(name); ok {
		return Entry{Workflow: w, Source: SourceGo}, true
	}
	var best Entry
	found := false
	for _, e := range c.definitions[namespace] {
		if e.Name() == name && (!found || olderDefinition(e, best)) {
			best, found = e, true
		}
	}
	return best, found
}

// olderDefinition orders definitions claiming one name: older first, then by name.
func olderDefinition(a, b Entry) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	return a.Definition < b.Definition
}

// DefinitionConflict says why the WorkflowDefinition namespace/definition is not the workflow
// its name resolves to: a WORKFLOW_DIRS file or a Go workflow has that name, or an older
// definition in the namespace claims it. Empty when it is the one runs get.
func (c *Catalog) DefinitionConflict(namespace, definition string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.definitions[namespace][definition]
	if !ok {
		return ""
	}
	winner, _ := c.lookupLocked(namespace, e.Name())
	switch {
	case winner.Source == SourceFile:
		return fmt.Sprintf("the workflow file %s of the manager's WORKFLOW_DIRS is named %q; rename WORKFLOW_NAME", winner.File, e.Name())
	case winner.Source == SourceGo:
		return fmt.Sprintf("a workflow compiled into the manager is named %q; rename WORKFLOW_NAME", e.Name())
	case winner.Definition != definition:
		return fmt.Sprintf("the older WorkflowDefinition %s/%s already defines %q; rename WORKFLOW_NAME or delete one of them", namespace, winner.Definition, e.Name())
	}
	return ""
}

// Definition returns the entry of the WorkflowDefinition namespace/name, whether or not it
// won its workflow's name.
func (c *Catalog) Definition(namespace, name string) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.definitions[namespace][name]
	return e, ok
}

// DefinitionsNamed returns the WorkflowDefinitions of namespace whose workflow is name, so that
// a change to one can wake the others.
func (c *Catalog) DefinitionsNamed(namespace, name string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for def, e := range c.definitions[namespace] {
		if e.Name() == name {
			out = append(out, def)
		}
	}
	sort.Strings(out)
	return out
}

// List returns the workflows visible in namespace, by name: WORKFLOW_DIRS files, Go workflows
// a file does not override, and the namespace's definitions that won their name.
func (c *Catalog) List(namespace string) []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := map[string]bool{}
	for name := range c.files {
		names[name] = true
	}
	for _, name := range c.registry.Names() {
		names[name] = true
	}
	for _, e := range c.definitions[namespace] {
		names[e.Name()] = true
	}
	out := make([]Entry, 0, len(names))
	for name := range names {
		if e, ok := c.lookupLocked(namespace, name); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// UnknownWorkflow says that no workflow named name is known in namespace, for a run's
// failure, a Ready condition or an API error: the workflows it knows, and the file whose
// NAMESPACES leaves the namespace out, if that is why. Set Field on the result where a spec
// field names the workflow.
func (c *Catalog) UnknownWorkflow(namespace, name string) *UnknownWorkflowError {
	err := &UnknownWorkflowError{Namespace: namespace, Name: name}
	c.mu.RLock()
	e, restricted := c.files[name]
	c.mu.RUnlock()
	if restricted && !e.allows(namespace) {
		fw, _ := e.FileWorkflow()
		err.Restriction = fmt.Sprintf("the workflow file %s may be started only in the namespaces its NAMESPACES lists: %s", e.File, strings.Join(fw.Namespaces(), ", "))
	}
	err.Known = c.Names(namespace)
	return err
}

// UnknownWorkflowError is a workflow name that no workflow has in a namespace. Its Error is
// the one message the operator writes for it, on a failed run (reason UnknownWorkflow), on a
// WorkflowSchedule's or a WebhookEndpoint's Ready condition, and in the REST API's answers.
// errors.Is matches it against ErrUnknownWorkflow.
type UnknownWorkflowError struct {
	// Namespace is where the workflow was looked up.
	Namespace string
	// Name is the workflow name nothing defines there.
	Name string
	// Restriction says which workflow file's NAMESPACES leaves Namespace out, when that is
	// why; empty otherwise.
	Restriction string
	// Known lists the workflows Namespace can run, sorted.
	Known []string
	// Field is the spec field to fix (for example "spec.workflowName"), for an object whose
	// spec names the workflow; empty for a run's failure and an API error.
	Field string
}

// Error says which workflow is not known where, why when a file restricts it, and which
// workflows are known.
func (e *UnknownWorkflowError) Error() string {
	msg := fmt.Sprintf("workflow %q is not known in namespace %s", e.Name, e.Namespace)
	if e.Restriction != "" {
		msg += " (" + e.Restriction + ")"
	}
	known := strings.Join(e.Known, ", ")
	if e.Field != "" {
		return msg + "; fix " + e.Field + " (known workflows: " + known + ")"
	}
	return msg + "; known workflows: " + known
}

// Is reports whether target is ErrUnknownWorkflow.
func (e *UnknownWorkflowError) Is(target error) bool { return target == ErrUnknownWorkflow }

// Names returns the names List returns, for error messages.
func (c *Catalog) Names(namespace string) []string {
	entries := c.List(namespace)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

// Overridden returns the Go workflows a WORKFLOW_DIRS file of the same name replaces.
func (c *Catalog) Overridden() []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Entry
	for name, e := range c.files {
		if _, ok := c.registry.Lookup(name); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// Pin makes sure the revision of e can be found again after its file changes: it stores the
// bundle of a workflow file before a run records the revision. Go workflows need nothing.
func (c *Catalog) Pin(ctx context.Context, e Entry) error {
	fw, ok := e.FileWorkflow()
	if !ok || c.opts.Store == nil {
		return nil
	}
	namespace := c.revisionNamespace(e)
	key := namespace + "/" + e.Revision
	c.mu.RLock()
	saved := c.saved[key]
	c.mu.RUnlock()
	if saved {
		return nil
	}
	if err := c.opts.Store.Save(ctx, namespace, e.Name(), e.Revision, fw.Bundle()); err != nil {
		return fmt.Errorf("store revision %s of workflow %q: %w", e.Revision, e.Name(), err)
	}
	c.mu.Lock()
	c.saved[key] = true
	c.mu.Unlock()
	return nil
}

// revisionNamespace is where e's revisions are stored: a definition's own namespace, or the
// operator's for WORKFLOW_DIRS files.
func (c *Catalog) revisionNamespace(e Entry) string {
	if e.Source == SourceDefinition {
		return e.Namespace
	}
	return c.opts.OperatorNamespace
}

// Forget drops what the catalog remembers of a stored revision that was deleted.
func (c *Catalog) Forget(namespace, revision string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.saved, namespace+"/"+revision)
	delete(c.compiled, namespace+"/"+revision)
}

// Current reports whether revision is the code of a workflow file or definition that new
// runs get now.
func (c *Catalog) Current(revision string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.files {
		if e.Revision == revision {
			return true
		}
	}
	for _, defs := range c.definitions {
		for _, e := range defs {
			if e.Revision == revision {
				return true
			}
		}
	}
	return false
}

// Resolve returns the workflow a started run executes: the revision it recorded, compiled from
// the current files when they still have it and from the RevisionStore otherwise. A run that
// recorded no revision started on a Go workflow and keeps it, even if a file of the same name
// appeared since.
func (c *Catalog) Resolve(ctx context.Context, namespace, name, revision string) (durable.Workflow, error) {
	if revision == "" {
		if w, ok := c.registry.Lookup(name); ok {
			return w, nil
		}
		if e, ok := c.Lookup(namespace, name); ok {
			return e.Workflow, nil
		}
		return nil, c.UnknownWorkflow(namespace, name)
	}
	if w, ok := c.currentRevision(namespace, name, revision); ok {
		return w, nil
	}
	return c.storedRevision(ctx, namespace, name, revision)
}

// ErrUnknownWorkflow matches (errors.Is) the *UnknownWorkflowError Resolve returns for a name
// no workflow has.
var ErrUnknownWorkflow = errors.New("unknown workflow")

// currentRevision finds revision among the current files and the namespace's definitions.
func (c *Catalog) currentRevision(namespace, name, revision string) (durable.Workflow, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, ok := c.files[name]; ok && e.Revision == revision {
		return e.Workflow, true
	}
	for _, e := range c.definitions[namespace] {
		if e.Name() == name && e.Revision == revision {
			return e.Workflow, true
		}
	}
	return nil, false
}

// storedRevision compiles a stored revision (once; kept compiled while used). A revision
// stored in the operator's namespace is the administrator's; one stored in any other namespace
// is compiled as a definition, whatever its bundle claims, and must hash to its own name, so a
// tenant cannot plant code under another revision's name or escape the sandbox.
func (c *Catalog) storedRevision(ctx context.Context, namespace, name, revision string) (durable.Workflow, error) {
	places := uniq(c.opts.OperatorNamespace, namespace)
	for _, ns := range places {
		if w, ok := c.compiledRevision(ns, revision); ok {
			return w, nil
		}
	}
	if c.opts.Store == nil {
		return nil, fmt.Errorf("%w: revision %s of workflow %q is no longer loaded and no revision store is configured", ErrRevisionNotFound, revision, name)
	}
	var firstErr error
	for _, ns := range places {
		bundle, err := c.opts.Store.Load(ctx, ns, revision)
		if errors.Is(err, ErrRevisionNotFound) {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read revision %s of workflow %q: %w", revision, name, err)
		}
		if ns != c.opts.OperatorNamespace {
			bundle.Origin = workflowfile.OriginDefinition
		}
		w, err := c.compileStored(bundle, name, revision)
		if err != nil {
			return nil, fmt.Errorf("compile the stored revision %s of workflow %q: %w", revision, name, err)
		}
		if fw, _ := w.(FileWorkflow); fw.Revision() != revision || w.Name() != name {
			return nil, fmt.Errorf("the stored revision %s in namespace %s holds workflow %q at revision %s, not %q at %s",
				revision, ns, w.Name(), fw.Revision(), name, revision)
		}
		c.keepCompiled(ns+"/"+revision, w)
		return w, nil
	}
	return nil, fmt.Errorf("revision %s of workflow %q, which this run started with, is not stored any more: %w", revision, name, firstErr)
}

// compileStored makes the workflow of a stored bundle again: Python files through the Python
// loader (which refuses any bundle not stored as the administrator's), Starlark by compiling
// it.
func (c *Catalog) compileStored(b workflowfile.Bundle, name, revision string) (durable.Workflow, error) {
	if !strings.HasSuffix(b.Entry, ".py") {
		return workflowfile.CompileBundle(b, c.Config(b.Origin))
	}
	if c.opts.Python == nil {
		return nil, fmt.Errorf("revision %s is a Python workflow file, and this manager runs no Python workers", revision)
	}
	return c.opts.Python.Stored(b, name, revision)
}

func uniq(a, b string) []string {
	if a == b || b == "" {
		return []string{a}
	}
	if a == "" {
		return []string{b}
	}
	return []string{a, b}
}

// compiledRevision returns an old revision kept compiled.
func (c *Catalog) compiledRevision(namespace, revision string) (durable.Workflow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr, ok := c.compiled[namespace+"/"+revision]
	if !ok {
		return nil, false
	}
	cr.used = time.Now()
	return cr.workflow, true
}

// keepCompiled remembers a compiled old revision, evicting the least recently used one past
// the bound.
func (c *Catalog) keepCompiled(key string, w durable.Workflow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.compiled[key] = &compiledRevision{workflow: w, used: time.Now()}
	for len(c.compiled) > c.opts.CompiledRevisions {
		var oldest string
		for k, cr := range c.compiled {
			if oldest == "" || cr.used.Before(c.compiled[oldest].used) {
				oldest = k
			}
		}
		delete(c.compiled, oldest)
	}
}

// WebhookOnly reports whether w starts only from webhook deliveries: one of the webhooks it
// declares says so (WebhookSpec.WebhookOnly).
func WebhookOnly(w durable.Workflow) bool {
	return slices.ContainsFunc(w.Webhooks(), func(s durable.WebhookSpec) bool { return s.WebhookOnly })
}

// Webhook is a webhook route a workflow declares in its code or file.
type Webhook struct {
	// Spec is the declaration.
	Spec durable.WebhookSpec
	// Entry is the declaring workflow.
	Entry Entry
}

// Declaring returns the workflows whose declarations (webhooks, schedules) are in force: every
// WORKFLOW_DIRS file, every Go workflow no file overrides, and every definition that won its
// name in its namespace.
func (c *Catalog) Declaring() []Entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Entry
	for _, e := range c.files {
		out = append(out, e)
	}
	for _, w := range c.registry.Workflows() {
		if _, overridden := c.files[w.Name()]; !overridden {
			out = append(out, Entry{Workflow: w, Source: SourceGo})
		}
	}
	for _, defs := range c.definitions {
		for _, e := range defs {
			if winner, _ := c.lookupLocked(e.Namespace, e.Name()); winner.Source == SourceDefinition && winner.Definition == e.Definition {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name(), b.Name()))
	})
	return out
}

// Webhooks returns every declared webhook route by slug: for each slug the declaration that
// serves it (a WORKFLOW_DIRS file first, then a Go workflow, then the oldest definition) and
// the ones that lose it.
func (c *Catalog) Webhooks() map[string][]Webhook {
	var all []Webhook
	for _, e := range c.Declaring() {
		all = appendWebhooks(all, e)
	}
	bySlug := map[string][]Webhook{}
	for _, w := range all {
		bySlug[w.Spec.Slug] = append(bySlug[w.Spec.Slug], w)
	}
	for _, claims := range bySlug {
		slices.SortFunc(claims, func(a, b Webhook) int { return precedence(a.Entry, b.Entry) })
	}
	return bySlug
}

func appendWebhooks(all []Webhook, e Entry) []Webhook {
	for _, spec := range e.Workflow.Webhooks() {
		all = append(all, Webhook{Spec: spec, Entry: e})
	}
	return all
}

// precedence orders claims of one slug: files, then Go, then definitions oldest first.
func precedence(a, b Entry) int {
	rank := map[Source]int{SourceFile: 0, SourceGo: 1, SourceDefinition: 2}
	if d := rank[a.Source] - rank[b.Source]; d != 0 {
		return d
	}
	if a.Source == SourceDefinition {
		if olderDefinition(a, b) {
			return -1
		}
		if olderDefinition(b, a) {
			return 1
		}
		return strings.Compare(a.Namespace, b.Namespace)
	}
	return strings.Compare(a.Name(), b.Name())
}
