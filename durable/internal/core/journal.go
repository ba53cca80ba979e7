package core

import (
	"encoding/json"
	"strings"
	"time"
)

// Kind is the kind of durable primitive a journal entry records.
type Kind string

// The kinds of primitive. Their names match WorkflowRun's status.journal[].kind.
const (
	KindStep  Kind = "Step"
	KindSleep Kind = "Sleep"
	KindEvent Kind = "Event"
	KindChild Kind = "Child"
	KindAgent Kind = "Agent"
	// KindVersion records the version GetVersion chose for a change.
	KindVersion Kind = "Version"
)

// State is where a journalled primitive stands.
type State string

// The states of an entry. Completed and Failed are final: replay returns them as recorded.
const (
	// StateRetrying: a step failed and waits for its next attempt at WakeAt.
	StateRetrying State = "Retrying"
	// StateSleeping: a timer runs until WakeAt.
	StateSleeping State = "Sleeping"
	// StateWaiting: something outside the run (an event, a child, an agent) is awaited.
	StateWaiting State = "Waiting"
	// StateCompleted: the primitive finished; Result holds its value.
	StateCompleted State = "Completed"
	// StateFailed: the primitive failed for good; Error holds the message.
	StateFailed State = "Failed"
)

// Entry is one record of the journal. Its JSON form mirrors status.journal[] of a WorkflowRun,
// so the engine can measure the journal's size as the API server will see it.
type Entry struct {
	Name       string          `json:"name"`
	Kind       Kind            `json:"kind"`
	State      State           `json:"state"`
	Attempts   int             `json:"attempts,omitempty"`
	StartedAt  time.Time       `json:"startedAt,omitzero"`
	FinishedAt time.Time       `json:"finishedAt,omitzero"`
	WakeAt     time.Time       `json:"wakeAt,omitzero"`
	Target     string          `json:"target,omitempty"`
	Ref        string          `json:"ref,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	// Payload references a result stored out of line by the execution's PayloadStore; Result
	// is empty then.
	Payload *PayloadRef `json:"payload,omitempty"`
	Error   string      `json:"error,omitempty"`
	// ErrorType is the type of a failed step's error (see ApplicationError), empty when the
	// error had none.
	ErrorType string `json:"errorType,omitempty"`
}

// PayloadRef says where a PayloadStore keeps a result too large for the journal. The engine
// treats it as opaque apart from Bytes, which counts against the run's budget.
type PayloadRef struct {
	// Name identifies the stored result (for the controller: its first WorkflowRunPayload).
	Name string `json:"name"`
	// Parts is how many pieces the store split the result into.
	Parts int `json:"parts"`
	// Bytes is the result's size as JSON.
	Bytes int `json:"bytes"`
	// SHA256 is the hex SHA-256 digest of the result, for the store to check on reading.
	SHA256 string `json:"sha256"`
}

// payloadBytes is the size of the result e stores out of line, 0 when it has none.
func (e *Entry) payloadBytes() int {
	if e.Payload == nil {
		return 0
	}
	return e.Payload.Bytes
}

// final reports whether the entry will never change again.
func (e *Entry) final() bool { return e.State == StateCompleted || e.State == StateFailed }

// Journal is a run's record of the primitives it reached, keyed by name and kept in the order
// they were first reached. It tracks its own size as JSON so that the engine can refuse to grow
// it past what the API server accepts.
type Journal struct {
	entries []Entry
	index   map[string]int
	sizes   []int
	bytes   int
	// payloads and payloadBytes count the results stored out of line.
	payloads     int
	payloadBytes int
	// children counts the Child entries that start a child (not the waits for one).
	children int
}

// NewJournal builds a journal from entries recorded earlier (in status), in their order.
func NewJournal(entries []Entry) *Journal {
	j := &Journal{
		entries: make([]Entry, 0, len(entries)),
		index:   make(map[string]int, len(entries)),
	}
	for _, e := range entries {
		j.put(e)
	}
	return j
}

// Entries returns the entries in the order they were first reached. The slice is the
// journal's own: callers must not modify it.
func (j *Journal) Entries() []Entry { return j.entries }

// Children is the number of child runs the run started.
func (j *Journal) Children() int { return j.children }

// Len is the number of entries.
func (j *Journal) Len() int { return len(j.entries) }

// Bytes is the journal's size as a JSON array.
func (j *Journal) Bytes() int { return j.bytes + 2 }

// EntryBytes is the size of the i-th entry as JSON.
func (j *Journal) EntryBytes(i int) int { return j.sizes[i] }

// Payloads counts the results stored out of line (see PayloadStore).
func (j *Journal) Payloads() int { return j.payloads }

// PayloadBytes is the size of the results stored out of line.
func (j *Journal) PayloadBytes() int { return j.payloadBytes }

// Lookup returns the entry recorded under name.
func (j *Journal) Lookup(name string) (Entry, bool) {
	i, ok := j.index[name]
	if !ok {
		return Entry{}, false
	}
	return j.entries[i], true
}

// sizeAfter is the journal's size once e has been put.
func (j *Journal) sizeAfter(e Entry) int {
	size := j.bytes + entrySize(e)
	if i, ok := j.index[e.Name]; ok {
		size -= j.sizes[i]
	} else if len(j.entries) > 0 {
		size++ // the comma before a new element
	}
	return size + 2
}

// payloadBytesAfter is the size of the results stored out of line once e has been put.
func (j *Journal) payloadBytesAfter(e Entry) int {
	size := j.payloadBytes + e.payloadBytes()
	if i, ok := j.index[e.Name]; ok {
		size -= j.entries[i].payloadBytes()
	}
	return size
}

// Mirror puts into j the entries an execution of the same run recorded in a journal of its
// own (in another process, see package sandbox), each adding or replacing the entry of its
// name as it did there, so that j stays that journal's copy.
func (j *Journal) Mirror(entries []Entry) {
	for _, e := range entries {
		j.put(e)
	}
}

// put adds e or replaces the entry of the same name, keeping the sizes current.
func (j *Journal) put(e Entry) {
	size := entrySize(e)
	j.payloadBytes += e.payloadBytes()
	if e.Payload != nil {
		j.payloads++
	}
	if i, ok := j.index[e.Name]; ok {
		j.bytes += size - j.sizes[i]
		j.payloadBytes -= j.entries[i].payloadBytes()
		if j.entries[i].Payload != nil {
			j.payloads--
		}
		j.entries[i], j.sizes[i] = e, size
		return
	}
	if len(j.entries) > 0 {
		j.bytes++
	}
	if e.Kind == KindChild && strings.HasPrefix(e.Target, childStartTarget) {
		j.children++
	}
	j.index[e.Name] = len(j.entries)
	j.entries = append(j.entries, e)
	j.sizes = append(j.sizes, size)
	j.bytes += size
}

// entrySize is the length of e encoded as JSON.
func entrySize(e Entry) int {
	b, err := json.Marshal(e)
	if err != nil {
		// Result is validated JSON before it reaches the journal; count it raw if not.
		return len(e.Result) + len(e.Error) + len(e.Name) + 256
	}
	return len(b)
}
