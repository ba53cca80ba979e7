package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// The four kinds of console handler differ in what they require before the handler runs:
//
//	public: a request slot (sign-in, static 404s)
//	page:   a request slot and a signed-in person (GET)
//	action: a request slot, a signed-in person, the same origin and the session's CSRF token (POST)
//	stream: a stream slot and a signed-in person (server-sent events)

// visit is one request of a signed-in person.
type visit struct {
	w         http.ResponseWriter
	r         *http.Request
	ctx       context.Context
	principal restapi.Principal
	session   session
}

// handlerFunc serves one visit; an error becomes an error page (see fail).
type handlerFunc func(v *visit) error

// pageError is a refusal the person can act on: a status, a title and a message.
type pageError struct {
	status  int
	title   string
	message string
}

func (e *pageError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.title, e.message) }

// signInNeeded sends the person to the sign-in page; why says what ended their session.
type signInNeeded struct{ why string }

func (e *signInNeeded) Error() string { return "sign-in needed: " + e.why }

// Why a person is sent to sign in, shown there (sign-in page notices).
const (
	whyNone      = ""
	whyExpired   = "expired"
	whyRefused   = "refused"
	whySignedOut = "signed-out"
)

// maxFormBytes bounds a form's body, like the REST API's bodies.
const maxFormBytes = restapi.MaxBodyBytes

// requestWait is how long a page request waits for a slot of the budget before it is refused.
const requestWait = 2 * time.Second

// budgeted serves h within the request budget, with the console's security headers, and logs
// the request at debug level (console_request: method, path, status, duration; never a key).
func (c *Console) budgeted(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, sw := time.Now(), &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			c.log.V(1).Info("console_request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start).String())
		}()
		securityHeaders(w.Header())
		release, ok := c.budget.takeRequest(r.Context(), requestWait)
		if !ok {
			c.fail(sw, r, nil, errBusy)
			return
		}
		defer release()
		h(sw, r)
	})
}

// statusWriter remembers the status a handler answered with, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records status and sends it.
func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// public serves h within the request budget, without a session.
func (c *Console) public(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return c.budgeted(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			c.fail(w, r, nil, err)
		}
	})
}

// page serves a GET for a signed-in person within the request budget.
func (c *Console) page(h handlerFunc) http.Handler {
	return c.budgeted(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), c.deps.RequestTimeout)
		defer cancel()
		v, err := c.authenticate(ctx, w, r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if err := h(v); err != nil {
			c.fail(w, r, v, err)
		}
	})
}

// action serves a POST for a signed-in person: from a page of this console (Origin) with the
// session's CSRF token, within the request budget.
func (c *Console) action(h handlerFunc) http.Handler {
	return c.page(func(v *visit) error {
		if err := parseForm(v.w, v.r); err != nil {
			return err
		}
		if !sameOrigin(v.r) || !validCSRF(v.session, v.r.PostForm.Get("csrf")) {
			return &pageError{status: http.StatusForbidden, title: "Form refused",
				message: "This form was not sent from a page of this console, or it belongs to an earlier sign-in. Go back, reload the page and send it again."}
		}
		return h(v)
	})
}

// stream serves a live stream for a signed-in person within the stream budget. A person who
// is not signed in gets a stream that says so at once, which makes the page go to sign-in.
// h returns an error only before the stream starts (a refused namespace, say), which is then
// answered with its status.
func (c *Console) stream(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		release, ok := c.budget.takeStream()
		if !ok {
			w.Header().Set("Retry-After", "10")
			http.Error(w, "the console's live streams are all in use; the page retries", http.StatusServiceUnavailable)
			return
		}
		defer release()
		ctx, cancel := context.WithTimeout(r.Context(), c.deps.StreamLifetime)
		defer cancel()
		v, err := c.authenticate(ctx, w, r)
		var need *signInNeeded
		switch {
		case errors.As(err, &need):
			sse := startEvents(w)
			sse.send("signout", need.why)
			return
		case err != nil:
			status, pe := c.describe(err)
			http.Error(w, pe.message, status)
			return
		}
		if err := h(v); err != nil {
			status, pe := c.describe(err)
			http.Error(w, pe.message, status)
		}
	})
}

// authenticate finds the person's session, refuses it when it was signed out (a copy of the
// cookie, on any replica), and checks its key as the REST API would.
func (c *Console) authenticate(ctx context.Context, w http.ResponseWriter, r *http.Request) (*visit, error) {
	s, err := c.sessions.readSession(r)
	switch {
	case errors.Is(err, errNoSession):
		return nil, &signInNeeded{why: whyNone}
	case errors.Is(err, errBadSession), errors.Is(err, errExpiredSession):
		c.clearCookie(w, r)
		return nil, &signInNeeded{why: whyExpired}
	case err != nil:
		return nil, err
	case c.signedOut.revoked(ctx, s):
		c.clearCookie(w, r)
		return nil, &signInNeeded{why: whySignedOut}
	}
	p, err := c.deps.REST.Authenticate(ctx, s.Key)
	switch {
	case restapi.IsKeyRefused(err):
		c.clearCookie(w, r)
		return nil, &signInNeeded{why: whyRefused}
	case err != nil:
		return nil, err
	}
	return &visit{w: w, r: r, ctx: ctx, principal: p, session: s}, nil
}

// parseForm reads a POST's form, at most maxFormBytes.
func parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &pageError{status: http.StatusRequestEntityTooLarge, title: "Form too large",
				message: fmt.Sprintf("The form is larger than %d bytes; keep inputs and payloads small and pass references to large data.", maxFormBytes)}
		}
		return &pageError{status: http.StatusBadRequest, title: "Form unreadable", message: "The form could not be read: " + err.Error()}
	}
	return nil
}

// sameOrigin reports whether a POST came from a page of this host, by its Origin header.
// Browsers send Origin with every POST; a request without one (not a browser) still needs
// the CSRF token.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return u.Host == r.Host || (r.Header.Get("X-Forwarded-Host") != "" && u.Host == r.Header.Get("X-Forwarded-Host"))
}

// errBusy is the answer when the console's request budget is spent.
var errBusy = &pageError{status: http.StatusServiceUnavailable, title: "The console is busy",
	message: "This replica is serving as many console pages as it may at once. Try again in a few seconds."}

// fail answers err: a redirect to sign-in, or an error page with the status and message the
// REST API would give for the same error. Errors nobody can act on are logged with their
// details and shown as a plain internal error.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	var need *signInNeeded
	if errors.As(err, &need) {
		http.Redirect(w, r, signInURL(r, need.why), http.StatusSeeOther)
		return
	}
	status, pe := c.describe(err)
	if status == http.StatusInternalServerError {
		c.log.Error(err, "console request failed", "method", r.Method, "path", r.URL.Path)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	c.render(w, r, v, status, "error", &errorPage{chrome: chrome{Title: pe.title}, Message: pe.message, Status: status})
}

// describe turns err into what the person sees.
func (c *Console) describe(err error) (int, *pageError) {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.status, pe
	}
	status, detail, ok := restapi.ErrorOf(err, "the request")
	if !ok {
		return http.StatusInternalServerError, &pageError{status: status, title: "Internal error",
			message: "Something went wrong on our side; the manager logged the details."}
	}
	return status, &pageError{status: status, title: titleOf(status), message: detail.Message}
}

// titleOf is an error page's title for status.
func titleOf(status int) string {
	switch status {
	case http.StatusForbidden:
		return "Not allowed"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusServiceUnavailable:
		return "Unavailable"
	default:
		return http.StatusText(status)
	}
}

// signInURL is the sign-in page that returns to the request's page afterwards.
func signInURL(r *http.Request, why string) string {
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		// A form was posted: come back to the page it was on, when that was one of ours.
		next = ""
		if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host {
			next = ref.RequestURI()
		}
	}
	q := url.Values{}
	if n := safeNext(next); n != Prefix+"runs" {
		q.Set("next", n)
	}
	if why != whyNone {
		q.Set("why", why)
	}
	if len(q) == 0 {
		return Prefix + "sign-in"
	}
	return Prefix + "sign-in?" + q.Encode()
}

// safeNext keeps a return path only when it is a console page of this host.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, Prefix) ||
		strings.HasPrefix(u.Path, Prefix+"sign-") || strings.Contains(u.Path, "//") || strings.HasSuffix(u.Path, "/live") {
		return Prefix + "runs"
	}
	return u.RequestURI()
}

// notFound answers paths under Prefix that the console does not serve.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) error {
	return &pageError{status: http.StatusNotFound, title: "Not found", message: fmt.Sprintf("The console has no page %s.", r.URL.Path)}
}

// securityHeaders keeps the console's pages to their own origin: no inline or foreign
// scripts and styles, no framing, no caching of pages that hold run data.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
