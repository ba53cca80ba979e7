package workflowfile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"

	starlarkjson "go.starlark.net/lib/json"
	starlarkmath "go.starlark.net/lib/math"
	starlarktime "go.starlark.net/lib/time"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/centaur-dev/workflow-operator/durable"
	"github.com/centaur-dev/workflow-operator/durable/engine"
)

// Origin says who wrote a workflow file, which decides what its code may reach and where its
// revisions are kept.
type Origin string

const (
	// OriginDir is a file from WORKFLOW_DIRS: the operator administrator's, trusted like the
	// workflows compiled into the manager.
	OriginDir Origin = "dir"
	// OriginDefinition is the source of a WorkflowDefinition: a tenant's code, whose http
	// module obeys the egress policy.
	OriginDefinition Origin = "definition"
)

// Reasons a file does not load. They are the Reason of a *LoadError and of a
// WorkflowDefinition's Ready condition. api/v1alpha1 mirrors every Reason of this package
// under the same name (its reasons_test.go fails on a reason added here without its twin there).
const (
	ReasonSyntaxError         = "SyntaxError"
	ReasonMissingWorkflowName = "MissingWorkflowName"
	ReasonMissingHandler      = "MissingHandler"
	ReasonInvalidWebhook      = "InvalidWebhook"
	ReasonInvalidInputDecl    = "InvalidInputDeclaration"
	ReasonLoadFailed          = "LoadFailed"
	ReasonModuleNotFound      = "ModuleNotFound"
	// ReasonMemoryLimitExceeded: loading the file (its top level, EXAMPLE_INPUT, ...) took more
	// memory than Config.Probe allows; see package loadprobe.
	ReasonMemoryLimitExceeded = "MemoryLimitExceeded"
)

// LoadError says why a workflow file does not load, and where.
type LoadError struct {
	// Reason is one of the Reason constants.
	Reason string
	// File is the file the problem is in (the workflow file or a module it loads).
	File string
	// Line and Column locate the problem; zero when it has no single place (a missing name).
	Line, Column int
	// Message says what is wrong and how to fix it.
	Message string
	// Backtrace is Starlark's traceback when the file failed while running its top level.
	Backtrace string
}

// Error formats the error as "file:line:column: message".
func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Message)
}

// Bundle is the text of a workflow file and of every module it loads, with its origin: all a
// revision needs to be compiled again anywhere. Its JSON form is what hosts store.
type Bundle struct {
	// Origin says who wrote the file.
	Origin Origin `json:"origin"`
	// Entry is the workflow file's path among Files, for example "nightly_report.star".
	Entry string `json:"entry"`
	// Files holds each file's text by its path relative to the workflow's directory.
	Files map[string]string `json:"files"`
}

// Digest is the hex SHA-256 of the bundle's canonical JSON (encoding/json sorts map keys): two
// bundles with the same digest compile to the same workflow, at the same revision.
func (b Bundle) Digest() string {
	raw, _ := json.Marshal(b)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// ReadFunc returns the text of the module at a slash-separated path relative to the workflow's
// directory.
type ReadFunc func(path string) ([]byte, error)

// Config is what the host hands to the workflow files it compiles.
type Config struct {
	// HTTP is the http module's client: NewHTTPClient(nil) for trusted files, with an Egress
	// policy for tenants' code. Nil means NewHTTPClient(nil).
	HTTP *http.Client
	// Modules are extra modules the manager exposes to files, by their predeclared name. Wrap
	// builtins with side effects in StepOnly.
	Modules starlark.StringDict
	// MaxSteps bounds the Starlark execution steps of one execution of a handler, of one call
	// of a step function and of a file's top level. Zero means DefaultMaxSteps.
	MaxSteps uint64
	// MaxResponseBytes caps the body of one http response; zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// CheckSchedule refuses a declared schedule the host cannot run (a bad cron expression or
	// time zone); the file then does not load, with reason InvalidSchedule. Nil accepts all.
	CheckSchedule func(durable.ScheduleSpec) error
	// MaxValueBytes bounds the JSON of one value a file hands the engine (a step's result, the
	// output, a child's input, an event's payload, EXAMPLE_INPUT), checked while it is
	// encoded. Zero means DefaultMaxValueBytes.
	MaxValueBytes int
	// MaxParallelBranches bounds the branches of one ctx.parallel call, each of which runs on
	// a goroutine of its own; a call with more fails the run. Zero means no bound (trusted
	// files); tenants' definitions get DefaultMaxParallelBranches from the manager.
	MaxParallelBranches int
	// Probe, when set, is asked first about every bundle compiled with this Config: it loads
	// the bundle where running out of memory cannot hurt the manager (package loadprobe) and
	// returns a *LoadError when the bundle must not be compiled here.
	Probe func(Bundle) error
}

// DefaultMaxParallelBranches is the manager's default bound on the branches of one
// ctx.parallel call in a WorkflowDefinition.
const DefaultMaxParallelBranches = 100

func (c *Config) maxValueBytes() int {
	if c == nil || c.MaxValueBytes <= 0 {
		return DefaultMaxValueBytes
	}
	return c.MaxValueBytes
}

// DefaultMaxSteps is enough for a handler that replays tens of thousands of primitives, and
// stops an endless loop within about a second.
const DefaultMaxSteps = 20_000_000

func (c *Config) maxSteps() uint64 {
	if c == nil || c.MaxSteps == 0 {
		return DefaultMaxSteps
	}
	return c.MaxSteps
}

// fileOptions are the Starlark dialect of workflow files: Python's while loops, recursion,
// sets and top-level control flow are allowed, since authors port Python.
var fileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

// workflowNamePattern is WorkflowRun.spec.workflowName's syntax.
var workflowNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// CheckWorkflowName says what is wrong with a WORKFLOW_NAME that runs cannot refer to
// (spec.workflowName's syntax), in any language of workflow files.
func CheckWorkflowName(name string) error {
	if !workflowNamePattern.MatchString(name) || len(name) > 253 {
		return fmt.Errorf("WORKFLOW_NAME must be letters, digits, '_', '.' and '-', starting with a letter or digit, at most 253 characters, got %q", name)
	}
	return nil
}

// Compile loads the workflow file entry, and the modules it loads through read, into a
// workflow. The error is a *LoadError.
func Compile(entry string, read ReadFunc, origin Origin, cfg *Config) (*Workflow, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	l := &loader{read: read, cfg: cfg, predeclared: predeclared(cfg), modules: map[string]*loadedModule{}, files: map[string]string{}}
	globals, err := l.load(entry)
	if err != nil {
		return nil, pythonHint(asLoadError(entry, err), l.files[entry], origin)
	}
	w, err := newWorkflow(entry, l.files[entry], globals, cfg)
	if err != nil {
		return nil, err
	}
	w.bundle = Bundle{Origin: origin, Entry: entry, Files: l.files}
	w.revision = RevisionName(w.Name(), w.bundle.Digest())
	return w, nil
}

// CompileBundle compiles a stored bundle again; it yields the revision it was stored under.
// A Config with a Probe asks it first.
func CompileBundle(b Bundle, cfg *Config) (*Workflow, error) {
	if cfg != nil && cfg.Probe != nil {
		if err := cfg.Probe(b); err != nil {
			return nil, err
		}
	}
	return Compile(b.Entry, func(p string) ([]byte, error) {
		text, ok := b.Files[p]
		if !ok {
			return nil, fmt.Errorf("the stored revision has no file %q", p)
		}
		return []byte(text), nil
	}, b.Origin, cfg)
}

// RevisionName is "<workflow name as a DNS label>-<12 hex digits of the digest>", usable as
// the name of the object that stores the revision. Python workflow files name their
// revisions the same way, from a digest of their own.
func RevisionName(workflow, digest string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(workflow) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 40 {
		name = strings.TrimRight(name[:40], "-")
	}
	if name == "" {
		name = "workflow"
	}
	return name + "-" + digest[:12]
}

// loader executes a file and the modules it loads, once each, recording their text.
type loader struct {
	read        ReadFunc
	cfg         *Config
	predeclared starlark.StringDict
	modules     map[string]*loadedModule
	files       map[string]string
}

// loadedModule is a module's globals, or the error it failed with; nil while it loads, to
// catch cycles.
type loadedModule struct {
	globals starlark.StringDict
	err     error
}

// load executes the module at p (relative to the workflow's directory) once.
func (l *loader) load(p string) (starlark.StringDict, error) {
	clean := path.Clean(p)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || !strings.HasSuffix(clean, ".star") {
		return nil, &LoadError{Reason: ReasonModuleNotFound, File: p,
			Message: fmt.Sprintf("load(%q): modules are .star files in the workflow's directory, named by a relative path such as \"_helpers.star\"", p)}
	}
	if m, ok := l.modules[clean]; ok {
		if m == nil {
			return nil, &LoadError{Reason: ReasonLoadFailed, File: clean, Message: "load cycle: the module loads itself through others"}
		}
		return m.globals, m.err
	}
	l.modules[clean] = nil
	src, err := l.read(clean)
	if err != nil {
		l.modules[clean] = &loadedModule{err: &LoadError{Reason: ReasonModuleNotFound, File: clean, Message: err.Error()}}
		return nil, l.modules[clean].err
	}
	l.files[clean] = string(src)
	thread := &starlark.Thread{
		Name:  "load " + clean,
		Load:  func(_ *starlark.Thread, module string) (starlark.StringDict, error) { return l.load(module) },
		Print: func(*starlark.Thread, string) {}, // a file's top level runs at every load: keep it quiet
	}
	thread.SetMaxExecutionSteps(l.cfg.maxSteps())
	starlarktime.SetNow(thread, nondeterministicNow)
	globals, err := starlark.ExecFileOptions(fileOptions, thread, clean, src, l.predeclared)
	if err != nil {
		err = asLoadError(clean, err)
	}
	l.modules[clean] = &loadedModule{globals: globals, err: err}
	return globals, err
}

// ReasonPythonNotSupported: a WorkflowDefinition's source is Python. Definitions are tenants'
// code and stay Starlark, which runs sandboxed.
const ReasonPythonNotSupported = "PythonNotSupported"

// pythonPattern finds what only Python source has at the start of a line: imports, async
// functions, decorators and classes.
var pythonPattern = regexp.MustCompile(`(?m)^(from\s+[\w.]+\s+import\b|import\s+\w|async\s+def\b|@\w|class\s+\w+\s*[:(])`)

// LooksLikePython reports whether src is Python rather than Starlark.
func LooksLikePython(src string) bool { return pythonPattern.MatchString(src) }

// pythonHint makes the syntax error of a file that is Python say so: a WorkflowDefinition
// fails with ReasonPythonNotSupported; a file of WORKFLOW_DIRS is told to be named .py.
func pythonHint(err error, src string, origin Origin) error {
	le, ok := err.(*LoadError)
	if !ok || le.Reason != ReasonSyntaxError || !LooksLikePython(src) {
		return err
	}
	out := *le
	if origin == OriginDefinition {
		out.Reason = ReasonPythonNotSupported
		out.Message = "the source is Python, but a WorkflowDefinition is Starlark: definitions are tenants' code and run sandboxed " +
			"(no imports, no I/O outside a step's http). Port it to Starlark (docs/workflow-files.md, \"Starlark for WorkflowDefinitions\"), " +
			"or ship it as a .py file in the operator's WORKFLOW_DIRS (" + le.Message + ")"
		return &out
	}
	out.Message += " (this looks like Python: a Python workflow file is named .py)"
	return &out
}

// asLoadError turns an error of Starlark's parser, resolver or evaluator into a *LoadError
// with the position of the problem (the innermost one, for errors in loaded modules).
func asLoadError(file string, err error) error {
	var le *LoadError
	if errors.As(err, &le) {
		return le
	}
	var syn syntax.Error
	if errors.As(err, &syn) {
		return &LoadError{Reason: ReasonSyntaxError, File: syn.Pos.Filename(), Line: int(syn.Pos.Line), Column: int(syn.Pos.Col), Message: syn.Msg}
	}
	var resolveErrs resolve.ErrorList
	if errors.As(err, &resolveErrs) && len(resolveErrs) > 0 {
		first := resolveErrs[0]
		return &LoadError{Reason: ReasonSyntaxError, File: first.Pos.Filename(), Line: int(first.Pos.Line), Column: int(first.Pos.Col), Message: first.Msg}
	}
	out := &LoadError{Reason: ReasonLoadFailed, File: file, Message: err.Error()}
	var declErr *declarationError
	if errors.As(err, &declErr) {
		out.Reason, out.Message = declErr.reason, declErr.err.Error()
	}
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		out.Backtrace = evalErr.Backtrace()
		if pos, ok := innermostPosition(evalErr.CallStack); ok {
			out.File, out.Line, out.Column = pos.Filename(), int(pos.Line), int(pos.Col)
		}
	}
	return out
}

// innermostPosition is the position of the deepest frame that has one (builtins have none).
func innermostPosition(stack starlark.CallStack) (syntax.Position, bool) {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].Pos.IsValid() && stack[i].Pos.Filename() != "<builtin>" {
			return stack[i].Pos, true
		}
	}
	return syntax.Position{}, false
}

// declarationError marks an error of a declaring builtin (WebhookSpec, dataclass, ...) with
// the load-failure reason it stands for.
type declarationError struct {
	reason string
	err    error
}

func (e *declarationError) Error() string { return e.err.Error() }
func (e *declarationError) Unwrap() error { return e.err }

// declaring wraps a builtin so that its errors carry reason.
func declaring(reason string, b *starlark.Builtin) *starlark.Builtin {
	return starlark.NewBuiltin(b.Name(), func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		v, err := starlark.Call(thread, b, args, kwargs)
		if err != nil {
			var evalErr *starlark.EvalError
			if errors.As(err, &evalErr) {
				err = evalErr.Unwrap()
			}
			return nil, &declarationError{reason: reason, err: err}
		}
		return v, nil
	})
}

// predeclared is the environment of every file and module: the declaring builtins, pure
// modules, and the side-effecting ones that only work inside steps.
func predeclared(cfg *Config) starlark.StringDict {
	client := cfg.HTTP
	if client == nil {
		client = NewHTTPClient(nil)
	}
	maxBody := cfg.MaxResponseBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxResponseBytes
	}
	env := starlark.StringDict{
		"json":             starlarkjson.Module,
		"math":             starlarkmath.Module,
		"time":             starlarktime.Module,
		"struct":           starlark.NewBuiltin("struct", starlarkstruct.Make),
		"timedelta":        starlark.NewBuiltin("timedelta", timedeltaBuiltin),
		"Any":              anyType{},
		"dataclass":        declaring(ReasonInvalidInputDecl, starlark.NewBuiltin("dataclass", dataclassBuiltin)),
		"field":            declaring(ReasonInvalidInputDecl, starlark.NewBuiltin("field", fieldBuiltin)),
		"WebhookSpec":      declaring(ReasonInvalidWebhook, starlark.NewBuiltin("WebhookSpec", webhookSpecBuiltin)),
		"HmacAuth":         hmacAuthType,
		"TokenAuth":        tokenAuthType,
		"HeaderTriggerKey": declaring(ReasonInvalidWebhook, starlark.NewBuiltin("HeaderTriggerKey", headerTriggerKeyBuiltin)),
		"BodyTriggerKey":   declaring(ReasonInvalidWebhook, starlark.NewBuiltin("BodyTriggerKey", bodyTriggerKeyBuiltin)),
		"RetryPolicy":      starlark.NewBuiltin("RetryPolicy", retryPolicyBuiltin),
		"DEFAULT_VERSION":  starlark.MakeInt(durable.DefaultVersion),
		"Schedule":         declaring(ReasonInvalidSchedule, starlark.NewBuiltin("Schedule", scheduleBuiltin)),
		"http":             httpModule(client, maxBody),
	}
	for name, m := range cfg.Modules {
		env[name] = m
	}
	return env
}

// Workflow is a compiled workflow file: a durable.Workflow with the file's revision, origin
// and source.
type Workflow struct {
	durable.Workflow
	handler    *starlark.Function
	input      *inputDecl
	cfg        *Config
	bundle     Bundle
	revision   string
	namespaces []string
}

// Language is what Workflow.Language says, in logs and listings.
const Language = "starlark"

// Language is "starlark".
func (w *Workflow) Language() string { return Language }

// Namespaces are the namespaces the file's NAMESPACES lets start it; nil when it sets none
// (every namespace may).
func (w *Workflow) Namespaces() []string { return slices.Clone(w.namespaces) }

// Revision identifies the file's code: "<name>-<digest>", a digest of the text of the file
// and of every module it loads, and of its origin.
func (w *Workflow) Revision() string { return w.revision }

// Bundle returns the text the revision needs, to store it.
func (w *Workflow) Bundle() Bundle { return w.bundle }

// File is the workflow file's path relative to its directory.
func (w *Workflow) File() string { return w.bundle.Entry }

// InputFields lists the declared input fields; nil when the file declares no Input.
func (w *Workflow) InputFields() []InputField {
	if w.input == nil {
		return nil
	}
	return w.input.Fields()
}

// newWorkflow reads the file's globals: WORKFLOW_NAME and handler (required), DESCRIPTION,
// EXAMPLE_INPUT, Input, WEBHOOKS and SCHEDULES (optional).
func newWorkflow(file, src string, globals starlark.StringDict, cfg *Config) (*Workflow, error) {
	// fail points at the statement that binds symbol, the global at fault.
	fail := func(symbol, reason, format string, args ...any) error {
		le := &LoadError{Reason: reason, File: file, Message: fmt.Sprintf(format, args...)}
		if line := GlobalLine(src, symbol); line > 0 {
			le.Line, le.Column = line, 1
		}
		return le
	}
	name, ok := starlark.AsString(globals["WORKFLOW_NAME"])
	switch {
	case globals["WORKFLOW_NAME"] == nil:
		return nil, fail("WORKFLOW_NAME", ReasonMissingWorkflowName, "the file sets no WORKFLOW_NAME; add WORKFLOW_NAME = \"my_workflow\" (modules for load() start with an underscore)")
	case !ok:
		return nil, fail("WORKFLOW_NAME", ReasonMissingWorkflowName, "WORKFLOW_NAME must be a string, got %s", globals["WORKFLOW_NAME"].Type())
	}
	if err := CheckWorkflowName(name); err != nil {
		return nil, fail("WORKFLOW_NAME", ReasonMissingWorkflowName, "%v", err)
	}
	handler, ok := globals["handler"].(*starlark.Function)
	if !ok || handler.NumParams() < 2 || handler.NumParams()-handler.NumKwonlyParams() < 2 {
		return nil, fail("handler", ReasonMissingHandler, "the file defines no handler(inp, ctx); define it with two parameters, the input and the context")
	}
	w := &Workflow{handler: handler, cfg: cfg}
	var opts []durable.Option
	if v, ok := globals["DESCRIPTION"]; ok {
		desc, isString := starlark.AsString(v)
		if !isString {
			return nil, fail("DESCRIPTION", ReasonLoadFailed, "DESCRIPTION must be a string, got %s", v.Type())
		}
		opts = append(opts, durable.WithDescription(strings.TrimSpace(desc)))
	}
	if v, ok := globals["EXAMPLE_INPUT"]; ok {
		raw, err := toJSON(v, cfg.maxValueBytes())
		if err != nil {
			return nil, fail("EXAMPLE_INPUT", ReasonLoadFailed, "EXAMPLE_INPUT must be JSON: %v", err)
		}
		opts = append(opts, durable.WithExampleInput(json.RawMessage(raw)))
	}
	if v, ok := globals["Input"]; ok {
		decl, isDecl := v.(*inputDecl)
		if !isDecl {
			return nil, fail("Input", ReasonInvalidInputDecl, "Input must be declared with dataclass(field = type, ...), got %s", v.Type())
		}
		w.input = decl
	}
	webhooks, err := webhooksOf(globals["WEBHOOKS"])
	if err != nil {
		return nil, fail("WEBHOOKS", ReasonInvalidWebhook, "%v", err)
	}
	for _, spec := range webhooks {
		opts = append(opts, durable.WithWebhook(spec))
	}
	schedules, err := schedulesOf(globals["SCHEDULES"], cfg.CheckSchedule)
	if err != nil {
		return nil, fail("SCHEDULES", ReasonInvalidSchedule, "%v", err)
	}
	for _, spec := range schedules {
		opts = append(opts, durable.WithSchedule(spec))
	}
	if w.namespaces, err = namespacesOf(globals["NAMESPACES"]); err != nil {
		return nil, fail("NAMESPACES", ReasonLoadFailed, "%v", err)
	}
	opts = append(opts, engine.WithInputCheck(w.checkInput))
	w.Workflow = engine.DefineRaw(name, w.run, opts...)
	return w, nil
}

// namespacePattern is a namespace name's syntax (a DNS label).
var namespacePattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// CheckNamespaces says what is wrong with a file's NAMESPACES, in any language of workflow
// files: each must be a namespace name.
func CheckNamespaces(namespaces []string) error {
	for _, ns := range namespaces {
		if !namespacePattern.MatchString(ns) || len(ns) > 63 {
			return fmt.Errorf("NAMESPACES: %q is not a namespace name", ns)
		}
	}
	return nil
}

// namespacesOf reads NAMESPACES: a list of namespace names, or nothing.
func namespacesOf(v starlark.Value) ([]string, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	seq, ok := v.(starlark.Indexable)
	if _, isString := v.(starlark.String); !ok || isString {
		return nil, fmt.Errorf("NAMESPACES must be a list of namespace names, got %s", v.Type())
	}
	out := make([]string, 0, seq.Len())
	for i := 0; i < seq.Len(); i++ {
		ns, ok := starlark.AsString(seq.Index(i))
		if !ok {
			return nil, fmt.Errorf("NAMESPACES[%d] is a %s, not a namespace name", i, seq.Index(i).Type())
		}
		out = append(out, ns)
	}
	return out, CheckNamespaces(out)
}

// webhooksOf reads WEBHOOKS: a list of WebhookSpec values with distinct slugs.
func webhooksOf(v starlark.Value) ([]durable.WebhookSpec, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	seq, ok := v.(starlark.Indexable)
	if !ok {
		return nil, fmt.Errorf("WEBHOOKS must be a list of WebhookSpec(...), got %s", v.Type())
	}
	var out []durable.WebhookSpec
	for i := 0; i < seq.Len(); i++ {
		hook, ok := seq.Index(i).(*webhookValue)
		if !ok {
			return nil, fmt.Errorf("WEBHOOKS[%d] is a %s, not a WebhookSpec(...)", i, seq.Index(i).Type())
		}
		if slices.ContainsFunc(out, func(s durable.WebhookSpec) bool { return s.Slug == hook.spec.Slug }) {
			return nil, fmt.Errorf("WEBHOOKS declares the slug %q twice", hook.spec.Slug)
		}
		out = append(out, hook.spec)
	}
	return out, nil
}

// checkInput is the workflow's durable.Workflow.CheckInput.
func (w *Workflow) checkInput(raw json.RawMessage) error {
	if w.input == nil {
		return nil
	}
	return w.input.check(raw)
}

// GlobalLine returns the line (1-based) of the first top-level statement of src that binds
// the global name: `name = ...`, `name: T = ...`, `def name(`, `async def name(` or `class
// name`; 0 when there is none (or name is empty). Workflow files of both languages declare
// their globals so, which lets a declaration that fails after the file ran (a bad cron, a
// webhook the host refuses) point at its line.
func GlobalLine(src, name string) int {
	if name == "" {
		return 0
	}
	for i, line := range strings.Split(src, "\n") {
		code, _, _ := strings.Cut(line, "#")
		for _, head := range []string{name + " =", name + "=", name + ":", "def " + name + "(", "async def " + name + "(", "class " + name + ":", "class " + name + "("} {
			if strings.HasPrefix(code, head) {
				return i + 1
			}
		}
	}
	return 0
}
