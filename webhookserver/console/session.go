package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/webhook/envelope"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// The manager reads the one Secret that holds the console's session key (--console-secret).
// The session Secret is read in the operator's namespace through the ClusterRole
// centaur-secret-reader, bound there (config/rbac), not cluster-wide.

// Sessions. Signing in puts the API key into a cookie sealed with AES-256-GCM (encrypted and
// authenticated) under a key derived with HMAC-SHA256 from the session secret that every
// replica reads from one Secret, so any replica serves any page and the server keeps no
// session state but the list of signed-out sessions (signout.go). The browser keeps the cookie
// for its session only (no Expires); the server refuses it after SessionMaxAge, or once it was
// signed out. Every request re-checks the key against the REST API's key store, so a revoked
// key ends its sessions within seconds.
const (
	// CookieName is the session cookie's name.
	CookieName = "centaur_console"
	// SessionMaxAge is how long a sign-in lasts at most.
	SessionMaxAge = 12 * time.Hour
	// SecretKey is the entry of the console Secret that holds the session secret.
	SecretKey = "session-key"
	// MinSecretBytes is the shortest session secret accepted.
	MinSecretBytes = 32
	// secretTTL is how long a read of the console Secret is trusted.
	secretTTL = time.Minute
	// secretReadTimeout bounds one read of the console Secret.
	secretReadTimeout = 5 * time.Second
	// keyDerivationLabel separates the cookie key from any other use of the secret.
	keyDerivationLabel = "centaur console session cookie v1"
)

// DefaultSecret is where the console looks for its session secret unless --console-secret
// says otherwise.
var DefaultSecret = types.NamespacedName{Namespace: "centaur-system", Name: "centaur-console"}

// session is what the cookie carries.
type session struct {
	// Key is the API key the person signed in with.
	Key string `json:"k"`
	// CSRF is the random token every form of this session posts back.
	CSRF string `json:"c"`
	// Issued is when the person signed in (Unix seconds).
	Issued int64 `json:"i"`
}

// errNoSession, errBadSession and errExpiredSession are why a request carries no usable session.
var (
	errNoSession      = errors.New("not signed in")
	errBadSession     = errors.New("the session cookie was not issued with the current session key")
	errExpiredSession = errors.New("the session is older than its maximum age")
)

// sessionKeys seals and opens session cookies with the key derived from the console Secret.
type sessionKeys struct {
	reader client.Reader
	secret types.NamespacedName
	now    func() time.Time

	mu        sync.Mutex
	aead      cipher.AEAD
	source    string // "secret" or "ephemeral"
	checkedAt time.Time
	problems  restapi.ProblemLog
}

// newSessionKeys reads the session secret through reader (nil: an ephemeral key).
func newSessionKeys(reader client.Reader, secret types.NamespacedName, logger logr.Logger) *sessionKeys {
	return &sessionKeys{reader: reader, secret: secret, now: time.Now, problems: restapi.ProblemLog{Log: logger, Event: "console_session_secret_problem"}}
}

// current returns the cipher for cookies. The Secret is re-read once its copy is older than
// secretTTL. Without the Secret the console runs on a key of its own process, made once, and
// says so in the log: sign-ins then last until the manager restarts and work on this replica
// only. A Secret that exists but is unusable is an error the sign-in page shows, not a silent
// fallback.
func (k *sessionKeys) current(ctx context.Context) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.aead != nil && now.Sub(k.checkedAt) < secretTTL {
		return k.aead, nil
	}
	secret, err := k.read(ctx)
	switch {
	case err == nil:
		aead, err := deriveAEAD(secret)
		if err != nil {
			return nil, err
		}
		k.aead, k.source, k.checkedAt = aead, "secret", now
		k.problems.Report("")
		return k.aead, nil
	case errors.Is(err, errSecretMissing):
		if k.source != "ephemeral" {
			aead, err := deriveAEAD(randomBytes(MinSecretBytes))
			if err != nil {
				return nil, err
			}
			k.aead, k.source = aead, "ephemeral"
		}
		k.checkedAt = now
		k.problems.Report(fmt.Sprintf("the console's session secret %s does not exist: sign-ins use a key of this process and end when it restarts, and other replicas refuse them; create it with: kubectl -n %s create secret generic %s --from-literal=%s=$(openssl rand -hex 32)",
			k.secret, k.secret.Namespace, k.secret.Name, SecretKey))
		return k.aead, nil
	case k.aead != nil && k.source == "secret" && !errors.Is(err, errSecretInvalid):
		k.problems.Report(fmt.Sprintf("read the console's session secret %s: %v; using the key read before", k.secret, err))
		return k.aead, nil
	default:
		k.problems.Report(err.Error())
		return nil, err
	}
}

// errSecretMissing and errSecretInvalid tell the two ways the Secret cannot be used apart.
var (
	errSecretMissing = errors.New("console secret missing")
	errSecretInvalid = errors.New("console secret invalid")
)

// read fetches the session secret.
func (k *sessionKeys) read(ctx context.Context) ([]byte, error) {
	if k.reader == nil {
		return nil, errSecretMissing
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), secretReadTimeout)
	defer cancel()
	var s corev1.Secret
	err := k.reader.Get(ctx, k.secret, &s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, errSecretMissing
	case err != nil:
		return nil, fmt.Errorf("read the console's session secret %s: %w", k.secret, err)
	case len(s.Data[SecretKey]) < MinSecretBytes:
		return nil, fmt.Errorf("%w: the console's session secret %s needs a key %q of at least %d bytes; set it with: kubectl -n %s create secret generic %s --from-literal=%s=$(openssl rand -hex 32) --dry-run=client -o yaml | kubectl apply -f -",
			errSecretInvalid, k.secret, SecretKey, MinSecretBytes, k.secret.Namespace, k.secret.Name, SecretKey)
	}
	return s.Data[SecretKey], nil
}

// deriveAEAD derives the cookie key from secret with HMAC-SHA256 and returns AES-256-GCM
// under it.
func deriveAEAD(secret []byte) (cipher.AEAD, error) {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(keyDerivationLabel))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("set up the session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("set up the session cipher: %w", err)
	}
	return aead, nil
}

// randomBytes returns n bytes from crypto/rand, which never fails on supported platforms.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newSession is a fresh session for key.
func newSession(key string, now time.Time) session {
	return session{Key: key, CSRF: base64.RawURLEncoding.EncodeToString(randomBytes(24)), Issued: now.Unix()}
}

// seal encodes s into a cookie value: base64url(nonce || AES-GCM(s)), with the cookie's name
// as additional data.
func (k *sessionKeys) seal(ctx context.Context, s session) (string, error) {
	aead, err := k.current(ctx)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("encode the session: %w", err)
	}
	nonce := randomBytes(aead.NonceSize())
	sealed := aead.Seal(nonce, nonce, plain, []byte(CookieName))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// open decodes and checks a cookie value.
func (k *sessionKeys) open(ctx context.Context, value string) (session, error) {
	aead, err := k.current(ctx)
	if err != nil {
		return session{}, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < aead.NonceSize() {
		return session{}, errBadSession
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(CookieName))
	if err != nil {
		return session{}, errBadSession
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil || s.Key == "" || s.CSRF == "" {
		return session{}, errBadSession
	}
	if age := k.now().Sub(time.Unix(s.Issued, 0)); age > SessionMaxAge || age < -time.Minute {
		return session{}, errExpiredSession
	}
	return s, nil
}

// ephemeral reports whether cookies are sealed with this process's own key.
func (k *sessionKeys) ephemeral() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.source == "ephemeral"
}

// readSession returns the request's session.
func (k *sessionKeys) readSession(r *http.Request) (session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return session{}, errNoSession
	}
	return k.open(r.Context(), c.Value)
}

// setCookie sends the session cookie: HttpOnly, SameSite=Strict, limited to the console's
// paths, Secure when the browser reached us over HTTPS, and without Expires, so the browser
// forgets it when its session ends.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     Prefix,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   isHTTPS(r, c.deps.TrustedProxies),
		SameSite: http.SameSiteStrictMode,
	})
}

// clearCookie makes the browser forget the session.
func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) { c.setCookie(w, r, "", -1) }

// isHTTPS reports whether the browser reached us over HTTPS, directly or through one of the
// trusted proxies that terminates TLS and says so in X-Forwarded-Proto (anyone else's word for
// it is not taken).
func isHTTPS(r *http.Request, trusted []netip.Prefix) bool {
	return r.TLS != nil || envelope.FromTrustedProxy(r.RemoteAddr, trusted) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// validCSRF reports whether the form's token is the session's, in constant time.
func validCSRF(s session, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(s.CSRF), []byte(token)) == 1
}
