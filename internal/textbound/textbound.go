// Package textbound cuts text that the manager copies from users, workflow code or upstream
// services into places with a size limit: a status field, a condition, an Event, a log line.
//
// Every such copy goes through Cut, so that an error of any length (a step that fails with
// megabytes of text, an LLM backend that answers with a huge error body) can never make a
// status write fail, an Event be rejected, or a log line grow without bound. Cut keeps whole
// UTF-8 characters and says how long the original was, so a reader knows text is missing.
//
// The package is plain Go with no Kubernetes imports: the replay engine uses it for journal
// entries too. The limits of the operator's own schemas live in api/v1alpha1; the limits the
// Kubernetes API server imposes on objects that are not ours are here.
package textbound

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// EventNote is the longest note (message) the API server accepts on an Event: 1024 bytes,
// for events.k8s.io/v1 and for core/v1 Events written by a reporting controller. A longer note
// is rejected with 422 and the Event is lost, so notes are cut to it.
const EventNote = 1024

// LogValue bounds text from upstream (a response body, a user's error) quoted in one log line,
// so that a flood of huge errors cannot flood the log pipeline as well.
const LogValue = 4096

// Cut returns s cut to at most n bytes on a character boundary, ending with a note of the
// original length (" … (cut from N bytes)"); s as it is when it fits. When n is too small to
// hold the note as well as some text, the text is cut without a note. Cut never returns half
// a UTF-8 character: s's invalid bytes are kept as they are, but no valid one is split.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	note := fmt.Sprintf(" … (cut from %d bytes)", len(s))
	if n < 2*len(note) {
		note = "" // too short a limit for a note
	}
	keep := max(n-len(note), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + note
}

// JSON returns raw (a JSON value) for a log line as it is when it has at most n bytes, so that a
// structured log keeps it structured, and as a string cut to n bytes (see Cut) otherwise.
func JSON(raw []byte, n int) any {
	if len(raw) <= n {
		return json.RawMessage(raw)
	}
	return Cut(string(raw), n)
}
