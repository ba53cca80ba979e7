package testflows

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// Ledger is an append-only file outside the cluster with one line per step execution. It is
// opened with O_APPEND and each line goes out in one write, so lines from concurrent steps, and
// from several manager processes sharing the file, never interleave; a SIGKILL loses nothing
// that was written, since the data is in the kernel's page cache once write returns.
type Ledger struct {
	f   *os.File
	pid string
	seq atomic.Int64
}

// LedgerLine is one step execution.
type LedgerLine struct {
	// Exec identifies the execution: the manager's pid and a sequence number ("py", the
	// worker's pid and a sequence number for a Python step).
	Exec string `json:"exec"`
	// Run is the run's namespace/name.
	Run string `json:"run"`
	// Step is the step's name.
	Step string `json:"step"`
	// Attempt is the attempt number the engine gave the execution (1 for the first).
	Attempt int `json:"attempt"`
	// OK is false for an attempt that failed on purpose.
	OK bool `json:"ok"`
	// At is when the line was written.
	At time.Time `json:"at"`
	// PID is the manager process that executed the step: for a Python workflow file's step, the
	// manager whose worker ran it.
	PID int `json:"pid"`
	// Worker is the Python worker process that ran the step function (0 for a Go step).
	Worker int `json:"worker,omitempty"`
}

// OpenLedger opens (creating if needed) the ledger at path for appending.
func OpenLedger(path string) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the ledger: %w", err)
	}
	return &Ledger{f: f, pid: strconv.Itoa(os.Getpid())}, nil
}

// Append writes the line of one step execution and returns its execution id.
func (l *Ledger) Append(run, step string, attempt int, ok bool) (string, error) {
	exec := l.pid + "-" + strconv.FormatInt(l.seq.Add(1), 10)
	line := LedgerLine{Exec: exec, Run: run, Step: step, Attempt: attempt, OK: ok, At: time.Now().UTC(), PID: os.Getpid()}
	b, err := json.Marshal(line)
	if err != nil {
		return "", fmt.Errorf("encode a ledger line: %w", err)
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return "", fmt.Errorf("append to the ledger: %w", err)
	}
	return exec, nil
}

// ReadLedger reads every line of the ledger at path, in the order they were appended.
func ReadLedger(path string) ([]LedgerLine, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the ledger: %w", err)
	}
	defer func() { _ = f.Close() }()
	var lines []LedgerLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var l LedgerLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("ledger line %d is not a whole line (%q): %w", n, sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the ledger: %w", err)
	}
	return lines, nil
}
