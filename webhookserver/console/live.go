package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
	"github.com/centaur-dev/workflow-operator/webhookserver/runindex"
)

// Live updates. A page that changes while it is open (the runs list, a run) opens a
// server-sent event stream; the stream waits on the run index for changes that concern the
// page and sends the page's live region re-rendered, at most once per liveInterval, so that a
// busy run does not flood the browser. The script swaps the region in. A heartbeat keeps
// proxies from closing an idle stream; the stream ends after Deps.StreamLifetime and the
// browser reconnects, to this replica or another.
const (
	// liveInterval is the shortest time between two updates of one stream.
	liveInterval = time.Second
	// heartbeatInterval is how often an idle stream sends a comment.
	heartbeatInterval = 20 * time.Second
	// writeGrace bounds one write to a stream: a browser that stops reading is dropped.
	writeGrace = 30 * time.Second
	// reconnectMillis is how long the browser waits before reconnecting a closed stream.
	reconnectMillis = 3000
)

// events writes server-sent events.
type events struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startEvents answers with an event stream and tells the browser how soon to reconnect.
func startEvents(w http.ResponseWriter) *events {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	e := &events{w: w, rc: http.NewResponseController(w)}
	_ = e.write(fmt.Sprintf("retry: %d\n\n", reconnectMillis))
	return e
}

// send writes one event; data may span lines. A carriage return ends a line of the stream as a
// line feed does, so data's lines are split on either: text of a run (an idempotency key, a
// correlation id) can never start a line of its own and forge an event.
func (e *events) send(event, data string) error {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(sseLines.Replace(data), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	return e.write(b.String())
}

// sseLines turns every line ending of the event-stream format (CR LF, CR, LF) into LF.
var sseLines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// heartbeat writes a comment, which browsers ignore.
func (e *events) heartbeat() error { return e.write(": keep-alive\n\n") }

// write sends s at once. The server's write timeout would end a long stream, so each write
// gets a deadline of its own.
func (e *events) write(s string) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(writeGrace))
	if _, err := e.w.Write([]byte(s)); err != nil {
		return fmt.Errorf("write to the live stream: %w", err)
	}
	if err := e.rc.Flush(); err != nil {
		return fmt.Errorf("flush the live stream: %w", err)
	}
	return nil
}

// follow streams render's output as "update" events: at once when now is true, then after
// every change sub signals, at most once per liveInterval, until the stream's time is up.
// Before each update the session and the key are checked again, so a signed-out session or a
// revoked key ends the stream with a "signout" event that sends the page to sign-in. A stream that fails (the browser went
// away, the run could not be read) ends; the browser reconnects.
func (c *Console) follow(v *visit, sub *runindex.Subscription, now bool, render func() (string, error)) error {
	if err := c.streamUpdates(v, sub, now, render); err != nil && v.ctx.Err() == nil {
		c.log.V(1).Info("console live stream ended", "path", v.r.URL.Path, "reason", err.Error())
	}
	return nil
}

// streamUpdates is follow's loop; its error says why the stream ended early.
func (c *Console) streamUpdates(v *visit, sub *runindex.Subscription, now bool, render func() (string, error)) error {
	defer sub.Close()
	sse := startEvents(v.w)
	heartbeat := time.NewTicker(heartbeatInterval)
	defer heartbeat.Stop()
	pending := now
	var last time.Time
	for {
		if pending {
			if wait := liveInterval - time.Since(last); wait > 0 && !last.IsZero() {
				if !sleep(v, wait) {
					return nil
				}
			}
			pending, last = false, time.Now()
			if done, err := c.update(v, sse, render); done || err != nil {
				return err
			}
			continue
		}
		select {
		case <-v.ctx.Done():
			return nil
		case <-heartbeat.C:
			if err := sse.heartbeat(); err != nil {
				return err
			}
		case <-sub.C():
			pending = true
		}
	}
}

// update re-checks the session and the key and sends one rendering; done means the stream is
// over.
func (c *Console) update(v *visit, sse *events, render func() (string, error)) (done bool, err error) {
	if c.signedOut.revoked(v.ctx, v.session) {
		return true, sse.send("signout", whySignedOut)
	}
	if _, err := c.deps.REST.Authenticate(v.ctx, v.session.Key); restapi.IsKeyRefused(err) {
		return true, sse.send("signout", whyRefused)
	}
	html, err := render()
	if err != nil {
		if v.ctx.Err() != nil {
			return true, nil
		}
		return true, err
	}
	return false, sse.send("update", html)
}

// sleep waits d or until the visit ends; false means it ended.
func sleep(v *visit, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-v.ctx.Done():
		return false
	}
}
