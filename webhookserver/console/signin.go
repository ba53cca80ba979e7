package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// signInView is the sign-in page's data.
type signInView struct {
	chrome
	// Next is where to go once signed in.
	Next string
	// Problem says why the last attempt failed, or why the person has to sign in again.
	Problem string
	// Operator says what an operator must fix for sign-ins to work (the session secret).
	Operator string
}

// whyMessages explain why a person was sent to sign in.
var whyMessages = map[string]string{
	whyExpired:   "Your session has ended (it expired, or the console's session key changed). Sign in again.",
	whyRefused:   "Your API key is no longer accepted: it was revoked or rotated. Sign in with a current key.",
	whySignedOut: "You have signed out.",
}

// signInPage shows the sign-in form.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) error {
	view := &signInView{chrome: chrome{Title: "Sign in"}, Next: safeNext(r.URL.Query().Get("next")), Problem: whyMessages[r.URL.Query().Get("why")]}
	c.render(w, r, nil, http.StatusOK, "sign-in", view)
	return nil
}

// signIn checks the key as the REST API would and, when it is valid, puts it into the session
// cookie. A refused key answers 401 with the form again and sets no cookie.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(w, r); err != nil {
		return err
	}
	view := &signInView{chrome: chrome{Title: "Sign in"}, Next: safeNext(r.PostForm.Get("next"))}
	if !sameOrigin(r) {
		return &pageError{status: http.StatusForbidden, title: "Form refused", message: "This sign-in form was not sent from a page of this console."}
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	ctx := r.Context()
	_, err := c.deps.REST.Authenticate(ctx, key)
	switch {
	case restapi.IsKeyRefused(err) && key == "":
		view.Problem = "Enter your API key."
		c.render(w, r, nil, http.StatusUnauthorized, "sign-in", view)
		return nil
	case restapi.IsKeyRefused(err):
		view.Problem = "That API key is not valid: it is unknown, revoked or mistyped."
		c.render(w, r, nil, http.StatusUnauthorized, "sign-in", view)
		return nil
	case err != nil:
		return err
	}
	value, err := c.sessions.seal(ctx, newSession(key, time.Now()))
	if err != nil {
		view.Operator = "Sign-in is unavailable: " + operatorMessage(err)
		c.render(w, r, nil, http.StatusServiceUnavailable, "sign-in", view)
		return nil
	}
	c.setCookie(w, r, value, 0)
	http.Redirect(w, r, view.Next, http.StatusSeeOther)
	return nil
}

// operatorMessage is what an operator needs to know about a session secret problem.
func operatorMessage(err error) string {
	if errors.Is(err, errSecretInvalid) {
		return err.Error()
	}
	return "the console's session secret cannot be read right now; retry shortly."
}

// signOut ends the session: the browser forgets the cookie, and every replica refuses a copy
// of it (signout.go). When the sign-out cannot be shared the person is signed out all the
// same, and the log says until when a copy of the cookie works elsewhere.
func (c *Console) signOut(v *visit) error {
	c.clearCookie(v.w, v.r)
	if err := c.signedOut.revoke(v.ctx, v.session); err != nil {
		c.log.Info("console_sign_out_not_shared", "key_id", v.principal.KeyID, "problem", err.Error(),
			"validUntil", time.Unix(sessionExpiry(v.session), 0).UTC().Format(time.RFC3339),
			"consequence", "this replica refuses the signed-out session, but other replicas accept a copy of its cookie until it expires")
	}
	http.Redirect(v.w, v.r, Prefix+"sign-in?why="+whySignedOut, http.StatusSeeOther)
	return nil
}
