package pyworker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// MaxOutputLine bounds one line of a worker's stdout or stderr in the manager's log; the rest
// of a longer line is dropped.
const MaxOutputLine = 4 << 10

// MinPythonVersion is the oldest CPython the worker supports.
var MinPythonVersion = [2]int{3, 9}

// worker is one CPython process and the manager's side of its pipes.
type worker struct {
	pool *Pool
	cmd  *exec.Cmd
	pid  int
	// toWorker carries commands (the worker's fd 3); wmu keeps each frame whole.
	toWorker *os.File
	wmu      sync.Mutex
	// fromWorker carries the worker's messages (its fd 4); one goroutine reads it.
	fromWorker *os.File

	mu        sync.Mutex
	nextID    int64
	sessions  map[int64]*Session
	requests  map[int64]chan *frame // loads and stats waiting for their answer
	revisions map[string]bool       // digests this worker has loaded
	turns     map[int64]*turnClock  // sessions whose handler code runs now
	draining  bool
	exitWhy   string // set by whoever kills the worker on purpose
	ready     chan *frame
	done      chan struct{}
	deathErr  *WorkerExitedError
	// goroutines counts the worker's readers, so that Close returns only after the last of
	// them has logged (a logger may be gone once Close returns).
	goroutines sync.WaitGroup
}

// turnClock times the handler code of one session between a message that resumes it and the
// message that says where it stopped.
type turnClock struct {
	since time.Time
	timer *time.Timer
}

// WorkerExitedError is what a session gets when its worker died or was killed: the run is
// executed again from its journal. Blamed says the run's own handler code was running when the
// worker went (a loop that never reached a ctx primitive, or memory it took).
type WorkerExitedError struct {
	PID    int
	Reason string
	Blamed bool
}

func (e *WorkerExitedError) Error() string {
	return fmt.Sprintf("Python worker %d exited: %s", e.PID, e.Reason)
}

// start runs a new worker process and waits for its ready message.
func (p *Pool) start(ctx context.Context) (*worker, error) {
	pkg, err := p.packageDir()
	if err != nil {
		return nil, err
	}
	interpreter, err := exec.LookPath(p.cfg.Python)
	if err != nil {
		return nil, fmt.Errorf("no Python interpreter: %s was not found (install Python %d.%d or later, or set --python-interpreter): %w",
			p.cfg.Python, MinPythonVersion[0], MinPythonVersion[1], err)
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create the worker's command pipe: %w", err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		toR.Close()
		toW.Close()
		return nil, fmt.Errorf("create the worker's message pipe: %w", err)
	}
	cmd := exec.Command(interpreter, "-B", "-m", "centaur_worker", "--in-fd", "3", "--out-fd", "4",
		"--cache-runs", strconv.Itoa(p.cfg.CacheRuns), "--cache-rss-bytes", strconv.FormatInt(p.cfg.CacheRSSBytes, 10))
	// The working directory leads sys.path under -m: the package's own directory, so nothing
	// in the manager's directory can shadow it.
	cmd.Dir = pkg
	cmd.Env = workerEnv(os.Environ(), pkg)
	cmd.ExtraFiles = []*os.File{toR, fromW}
	// Its own process group keeps a terminal's Ctrl-C for the manager; the parent-death
	// signal (with the end of the command pipe) makes sure no worker outlives its manager.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, closeAll(err, toR, toW, fromR, fromW)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, closeAll(err, toR, toW, fromR, fromW)
	}
	if err := cmd.Start(); err != nil {
		return nil, closeAll(fmt.Errorf("start %s: %w", interpreter, err), toR, toW, fromR, fromW)
	}
	toR.Close()
	fromW.Close()
	w := &worker{pool: p, cmd: cmd, pid: cmd.Process.Pid, toWorker: toW, fromWorker: fromR,
		sessions: map[int64]*Session{}, requests: map[int64]chan *frame{}, revisions: map[string]bool{},
		turns: map[int64]*turnClock{}, ready: make(chan *frame, 1), done: make(chan struct{})}
	w.goroutines.Go(func() { w.logLines(stdout, "stdout") })
	w.goroutines.Go(func() { w.logLines(stderr, "stderr") })
	w.goroutines.Go(w.readLoop)
	if err := w.awaitReady(ctx); err != nil {
		w.kill("it did not start: " + err.Error())
		w.goroutines.Wait()
		return nil, err
	}
	p.log.V(1).Info("python_worker_started", "pid", w.pid, "python", interpreter)
	return w, nil
}

// workerEnv is the manager's environment for a worker: the package first on PYTHONPATH, no
// bytecode written, output unbuffered.
func workerEnv(env []string, pkg string) []string {
	out := make([]string, 0, len(env)+3)
	path := pkg
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "PYTHONPATH="):
			if rest := strings.TrimPrefix(kv, "PYTHONPATH="); rest != "" {
				path += string(os.PathListSeparator) + rest
			}
		case strings.HasPrefix(kv, "PYTHONDONTWRITEBYTECODE="), strings.HasPrefix(kv, "PYTHONUNBUFFERED="):
		default:
			out = append(out, kv)
		}
	}
	return append(out, "PYTHONPATH="+path, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
}

func closeAll(err error, files ...*os.File) error {
	for _, f := range files {
		f.Close()
	}
	return err
}

// awaitReady waits for the worker's ready message and checks its Python version.
func (w *worker) awaitReady(ctx context.Context) error {
	timer := time.NewTimer(w.pool.cfg.StartTimeout)
	defer timer.Stop()
	select {
	case f := <-w.ready:
		return checkVersion(f.Python)
	case <-w.done:
		return fmt.Errorf("the worker exited before it was ready: %s", w.deathErr.Reason)
	case <-timer.C:
		return fmt.Errorf("the worker was not ready within %s", w.pool.cfg.StartTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkVersion refuses a Python older than MinPythonVersion.
func checkVersion(version string) error {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) >= 2 {
		major, err1 := strconv.Atoi(parts[0])
		minor, err2 := strconv.Atoi(parts[1])
		if err1 == nil && err2 == nil && [2]int{major, minor} == maxVersion([2]int{major, minor}, MinPythonVersion) {
			return nil
		}
	}
	return fmt.Errorf("workflow files need Python %d.%d or later, and the interpreter is %q: set --python-interpreter to a newer one",
		MinPythonVersion[0], MinPythonVersion[1], version)
}

func maxVersion(a, b [2]int) [2]int {
	if a[0] > b[0] || a[0] == b[0] && a[1] >= b[1] {
		return a
	}
	return b
}

// logLines copies one of the worker's output streams into the manager's log, a bounded line
// at a time.
func (w *worker) logLines(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, MaxOutputLine)
	for {
		line, err := readBoundedLine(br)
		if line != "" {
			w.pool.log.Info("python_worker_output", "pid", w.pid, "stream", stream, "line", line)
		}
		if err != nil {
			return
		}
	}
}

// readBoundedLine reads one line and returns at most MaxOutputLine bytes of it: a longer line
// is cut on a character boundary and says how long it was; the rest is dropped unread into
// memory.
func readBoundedLine(br *bufio.Reader) (string, error) {
	var kept []byte
	total := 0
	for {
		chunk, err := br.ReadSlice('\n')
		total += len(chunk)
		if room := MaxOutputLine - len(kept); room > 0 {
			kept = append(kept, chunk[:min(room, len(chunk))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line := strings.TrimRight(string(kept), "\r\n")
		if total <= MaxOutputLine {
			return line, err
		}
		note := fmt.Sprintf(" … (cut from %d bytes)", total)
		cut := []byte(line[:min(len(line), MaxOutputLine-len(note))])
		for len(cut) > 0 && !utf8.Valid(cut) {
			cut = cut[:len(cut)-1]
		}
		return string(cut) + note, err
	}
}

// send writes one message to the worker.
func (w *worker) send(f *frame) error {
	data, err := encodeFrame(f)
	if err != nil {
		return err
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if _, err := w.toWorker.Write(data); err != nil {
		return w.exitedError(err)
	}
	return nil
}

// exitedError is the error of a worker that is gone, or err while it is not known to be.
func (w *worker) exitedError(err error) error {
	select {
	case <-w.done:
		return w.deathErr
	default:
		return fmt.Errorf("write to Python worker %d: %w", w.pid, err)
	}
}

// readLoop hands each message of the worker to whoever waits for it, until the pipe ends.
func (w *worker) readLoop() {
	r := bufio.NewReaderSize(w.fromWorker, 64<<10)
	for {
		f, err := readFrame(r)
		if err != nil {
			reason := "its message pipe closed"
			if !errors.Is(err, io.EOF) {
				reason = err.Error()
			}
			w.die(reason)
			return
		}
		w.dispatch(f)
	}
}

// dispatch routes one message.
func (w *worker) dispatch(f *frame) {
	switch f.Op {
	case "ready":
		select {
		case w.ready <- f:
		default:
		}
	case "loaded", "load_failed", "stats":
		w.mu.Lock()
		ch := w.requests[f.ID]
		delete(w.requests, f.ID)
		w.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	case "log":
		if s := w.session(f.S); s != nil {
			s.log(f)
		}
	case "step_done":
		if s := w.session(f.S); s != nil {
			s.stepDone(f)
		}
	case "turn", "return", "raise", "fail", "unknown_revision":
		w.endTurn(f.S)
		if s := w.session(f.S); s != nil {
			s.deliver(f)
		}
	default:
		w.pool.log.Info("python_worker_protocol_error", "pid", w.pid, "message", "unknown op "+strconv.Quote(f.Op))
	}
}

func (w *worker) session(id int64) *Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessions[id]
}

// request sends a message that is answered by id (load, stats) and waits for the answer.
func (w *worker) request(ctx context.Context, f *frame, deadline time.Duration) (*frame, error) {
	ch := make(chan *frame, 1)
	w.mu.Lock()
	w.nextID++
	f.ID = w.nextID
	w.requests[f.ID] = ch
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.requests, f.ID)
		w.mu.Unlock()
	}()
	if err := w.send(f); err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if deadline > 0 {
		timer := time.NewTimer(deadline)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case answer := <-ch:
		return answer, nil
	case <-w.done:
		return nil, w.deathErr
	case <-timeout:
		w.kill(fmt.Sprintf("its %s did not finish within %s", f.Op, deadline))
		return nil, errDeadline
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// errDeadline is a request that ran past its deadline (the worker was killed for it).
var errDeadline = errors.New("past the deadline")

// startTurn starts the clock of session id's handler code: the worker is killed when it runs
// past the pool's handler deadline without saying where it stopped.
func (w *worker) startTurn(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.turns[id]; old != nil {
		old.timer.Stop()
	}
	clock := &turnClock{since: time.Now()}
	clock.timer = time.AfterFunc(w.pool.cfg.HandlerDeadline, func() { w.overrun(clock) })
	w.turns[id] = clock
}

// endTurn stops the clock of session id.
func (w *worker) endTurn(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if clock := w.turns[id]; clock != nil {
		clock.timer.Stop()
		delete(w.turns, id)
	}
}

// overrun kills the worker when clock's turn is still running: the oldest running turn is the
// one whose code holds the worker (a worker runs handler code one turn at a time, in order).
func (w *worker) overrun(clock *turnClock) {
	w.mu.Lock()
	still := false
	for _, c := range w.turns {
		still = still || c == clock
	}
	w.mu.Unlock()
	if still {
		w.kill(fmt.Sprintf("handler code (or the top level of its file) ran for more than %s without reaching a ctx primitive (--python-handler-deadline)", w.pool.cfg.HandlerDeadline))
	}
}

// kill ends the worker on purpose, saying why; the read loop then reports its death.
func (w *worker) kill(why string) {
	w.mu.Lock()
	if w.exitWhy == "" {
		w.exitWhy = why
	}
	w.mu.Unlock()
	_ = w.cmd.Process.Kill()
}

// die runs once, when the worker's message pipe ended: it reaps the process, blames the runs
// whose handler code was running, and fails everything that waited for the worker.
func (w *worker) die(pipeReason string) {
	_ = w.cmd.Process.Kill()
	waitErr := w.cmd.Wait()
	w.toWorker.Close()
	w.fromWorker.Close()

	w.mu.Lock()
	reason := w.exitWhy
	if reason == "" {
		reason = exitDescription(waitErr, pipeReason)
	}
	culprits := map[int64]bool{}
	for id, clock := range w.turns {
		clock.timer.Stop()
		culprits[id] = true
	}
	sessions := w.sessions
	w.sessions, w.turns = map[int64]*Session{}, map[int64]*turnClock{}
	w.deathErr = &WorkerExitedError{PID: w.pid, Reason: reason}
	w.mu.Unlock()

	close(w.done)
	w.pool.retire(w)
	for id, s := range sessions {
		err := &WorkerExitedError{PID: w.pid, Reason: reason, Blamed: culprits[id]}
		if err.Blamed {
			w.pool.blame(s.uid)
		}
		s.fail(err)
	}
	w.pool.log.Info("python_worker_exited", "pid", w.pid, "reason", reason, "sessions", len(sessions), "blamed", len(culprits))
}

// exitDescription says how the process ended.
func exitDescription(waitErr error, pipeReason string) string {
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() {
			return "killed by signal " + status.Signal().String() + " (out of memory, or killed from outside)"
		}
		return fmt.Sprintf("exit status %d", exit.ExitCode())
	}
	if waitErr != nil {
		return waitErr.Error()
	}
	return "it exited (" + pipeReason + ")"
}

// busy reports whether any session still uses the worker.
func (w *worker) busy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sessions) > 0
}
