// Package crashguard finds the tenants' runs whose code takes the manager's process down, so
// that they stop instead of crash-looping every replica they land on.
//
// Tenants' Starlark runs inside the manager (go.starlark.net does not account memory), so a
// step that allocates a gigabyte kills the process, and the run, executed again by the next
// process or replica, kills that one too. The guard breaks the loop. While a tenant's run
// executes, a small file in a directory that outlives the process (an emptyDir: a container
// restart keeps it) names the run; a process that ends normally leaves none behind. A new
// process reads the files a dead one left: those runs were executing when it died. The manager
// then counts strikes on each of them, on the run itself (an annotation only the manager may
// write), so every replica sees them: one for a death it may have been a bystander of, and
// Conviction for a death while it executed alone. A run with strikes executes alone among
// tenants' runs when it can (it waits up to DefaultAloneWait for the others to finish), so that its
// next death convicts it and no bystander; a run with Conviction strikes fails instead of
// executing. A run that executes alone and survives was a bystander: its strikes are cleared.
package crashguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

// Run names a run the guard watches.
type Run struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// Suspect is a run that was executing when an earlier process died.
type Suspect struct {
	Run
	// Alone says the run was executing alone (it had a strike already): the death is its
	// own, not a bystander's.
	Alone bool `json:"alone"`
	// file is the record the dead process left, removed by Forget.
	file string
}

// Conviction is the strikes at which a run fails instead of executing: a death while it
// executed alone, or three deaths it was among the runs executing at.
const Conviction = 3

// DefaultAloneWait bounds how long a suspect waits for the other tenants' executions to end before it
// executes beside them after all (a long step elsewhere must not stall it, nor everyone
// queued behind it). Its death then counts one strike, not a conviction.
const DefaultAloneWait = 10 * time.Second

// Guard records which tenants' runs this process is executing, and makes a suspect execute
// alone. Its methods are safe for concurrent use.
type Guard struct {
	// AloneWait is how long a suspect waits to execute alone; Open sets DefaultAloneWait.
	AloneWait time.Duration

	// dir is this process's directory of records, locked by lock while the process lives.
	dir  string
	lock *os.File
	seq  atomic.Uint64
	// dead holds the locks of dead processes' directories whose records are not all
	// forgotten yet.
	mu   sync.Mutex
	dead map[string]*os.File
	// slots is taken one unit by every guarded execution and whole by a suspect's, which thus
	// runs with no other tenant's code beside it. It is first come, first served: executions
	// that arrive while a suspect waits queue behind it (for at most AloneWait).
	slots *semaphore.Weighted
}

// allSlots is the weight of the guard's semaphore: more executions than can ever run at once.
const allSlots = 1 << 30

// processPrefix starts the name of each process's directory of records, and recordPrefix
// each record's file name in it.
const (
	processPrefix = "process-"
	newPrefix     = "new-"
	recordPrefix  = "inflight-"
	lockName      = "lock"
)

// Open makes the guard of dir (created if need be) and returns the suspects that dead processes
// left there. Each process keeps its records in a directory of its own, locked (flock) for as
// long as it lives, so that processes sharing dir (replicas on one machine, a restarted
// container whose new process has the same pid) never take a live one's records for a dead
// one's. A dead process's records stay until Forget, so a process that dies before it has
// counted their strikes leaves them to the next.
func Open(dir string) (*Guard, []Suspect, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create the crash guard's directory: %w", err)
	}
	own, lock, err := makeOwnDir(dir)
	if err != nil {
		return nil, nil, err
	}
	g := &Guard{dir: own, lock: lock, dead: map[string]*os.File{}, slots: semaphore.NewWeighted(allSlots), AloneWait: DefaultAloneWait}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read the crash guard's directory: %w", err)
	}
	var suspects []Suspect
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), newPrefix) {
			removeAbandoned(path, e)
		}
		if !e.IsDir() || !strings.HasPrefix(e.Name(), processPrefix) || path == own {
			continue
		}
		found, err := g.leftBy(path)
		if err != nil {
			return nil, nil, err
		}
		suspects = append(suspects, found...)
	}
	return g, suspects, nil
}

// leftBy returns the records of the process whose directory is path when that process is
// dead (its lock is free), keeping the lock until they are forgotten; none when it lives.
func (g *Guard) leftBy(path string) ([]Suspect, error) {
	lock, ok, err := lockDir(path)
	if err != nil || !ok {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(path, recordPrefix+"*.json"))
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	var suspects []Suspect
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			_ = lock.Close()
			return nil, fmt.Errorf("read the crash record %s: %w", file, err)
		}
		var s Suspect
		if err := json.Unmarshal(data, &s); err != nil || s.UID == "" {
			_ = os.Remove(file) // a record cut short by the death itself names nobody
			continue
		}
		s.file = file
		suspects = append(suspects, s)
	}
	g.dead[path] = lock
	g.sweep(path)
	return suspects, nil
}

// abandonedAfter is how old a directory still under its new name must be to be taken for one
// whose process died before it placed it (it holds no record).
const abandonedAfter = time.Minute

// removeAbandoned removes a process's directory that never got placed, once it is old enough
// that its process cannot be between making and placing it.
func removeAbandoned(path string, e os.DirEntry) {
	if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > abandonedAfter {
		_ = os.RemoveAll(path)
	}
}

// lockDir takes the lock of a process's directory without waiting; ok is false when a live
// process holds it.
func lockDir(dir string) (lock *os.File, ok bool, err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open the lock of %s: %w", dir, err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return f, true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		_ = f.Close()
		return nil, false, nil
	default:
		_ = f.Close()
		return nil, false, fmt.Errorf("lock %s: %w", dir, err)
	}
}

// makeOwnDir makes this process's directory of records, locked before anyone can see it: it
// is made and locked under a name others skip (newPrefix), then renamed into place.
func makeOwnDir(dir string) (string, *os.File, error) {
	tmp, err := os.MkdirTemp(dir, newPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("create this process's crash records: %w", err)
	}
	lock, ok, err := lockDir(tmp)
	if err != nil || !ok {
		return "", nil, errors.Join(fmt.Errorf("lock this process's crash records in %s", tmp), err)
	}
	own := filepath.Join(dir, processPrefix+strings.TrimPrefix(filepath.Base(tmp), newPrefix))
	if err := os.Rename(tmp, own); err != nil {
		_ = lock.Close()
		return "", nil, fmt.Errorf("place this process's crash records: %w", err)
	}
	return own, lock, nil
}

// sweep removes a dead process's directory once no record is left in it.
func (g *Guard) sweep(path string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	lock, ok := g.dead[path]
	if !ok {
		return
	}
	if left, _ := filepath.Glob(filepath.Join(path, recordPrefix+"*.json")); len(left) > 0 {
		return
	}
	_ = os.RemoveAll(path)
	_ = lock.Close()
	delete(g.dead, path)
}

// Forget removes a suspect's record once its strikes are counted.
func (g *Guard) Forget(s Suspect) error {
	if err := os.Remove(s.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the crash record of run %s/%s: %w", s.Namespace, s.Name, err)
	}
	g.sweep(filepath.Dir(s.file))
	return nil
}

// Close removes this process's records and releases the locks it holds: a process that ends
// normally leaves nothing behind.
func (g *Guard) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for path, lock := range g.dead {
		_ = lock.Close()
		delete(g.dead, path)
	}
	_ = os.RemoveAll(g.dir)
	_ = g.lock.Close()
}

// Enter records that run starts executing tenant code. A suspect first tries, for up to
// g.AloneWait, to execute alone (the other guarded executions end first, and new ones wait for
// it); alone reports whether it does. The returned function ends the record; call it when the
// execution is over.
func (g *Guard) Enter(ctx context.Context, run Run, suspect bool) (leave func(), alone bool, err error) {
	weight := int64(1)
	if suspect {
		waitCtx, cancel := context.WithTimeout(ctx, g.AloneWait)
		if g.slots.Acquire(waitCtx, allSlots) == nil {
			weight, alone = allSlots, true
		}
		cancel()
	}
	if !alone {
		if err := g.slots.Acquire(ctx, 1); err != nil {
			return nil, false, err
		}
	}
	path := filepath.Join(g.dir, fmt.Sprintf("%s%d.json", recordPrefix, g.seq.Add(1)))
	data, _ := json.Marshal(Suspect{Run: run, Alone: alone})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		g.slots.Release(weight)
		return nil, false, fmt.Errorf("record that run %s/%s executes: %w", run.Namespace, run.Name, err)
	}
	return func() {
		_ = os.Remove(path)
		g.slots.Release(weight)
	}, alone, nil
}

// Strikes is what a suspect's death adds to its strikes.
func (s Suspect) Strikes() int { return Strikes(s.Alone) }

// Strikes is what a death adds to the strikes of a run that was executing at it: Conviction
// when it executed alone, so the death is its own, else one.
func Strikes(alone bool) int {
	if alone {
		return Conviction
	}
	return 1
}
