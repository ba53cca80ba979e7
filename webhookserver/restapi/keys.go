package restapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

// The manager reads the Secret that holds the API keys (--api-keys-secret) through the
// ClusterRole centaur-secret-reader, bound in the Secret's namespace (config/rbac), never
// cluster-wide.

// APIKeyHeader is the request header that carries the API key.
const APIKeyHeader = "X-Api-Key"

// DefaultKeysSecret is where the manager looks for API keys unless --api-keys-secret says
// otherwise.
var DefaultKeysSecret = types.NamespacedName{Namespace: "centaur-system", Name: "centaur-api-keys"}

// DefaultKeyCacheTTL is how long the key store trusts its copy of the Secret: a rotated or
// revoked key takes effect within this time, without a restart.
const DefaultKeyCacheTTL = 3 * time.Second

// staleKeysGrace is how long the last good copy of the keys keeps serving while the API
// server cannot be read, so that a short API server outage does not lock every client out.
const staleKeysGrace = time.Minute

// keysReadTimeout bounds one read of the Secret.
const keysReadTimeout = 5 * time.Second

// KeyEntry is one API key's record: the value of one data entry of the keys Secret, whose
// name is the key's id (used in logs and audit annotations, never secret). Only the key's
// SHA-256 is stored, so reading the Secret does not reveal any key.
//
//	{"sha256": "<hex of sha256(key)>", "namespaces": ["default", "team-a"], "default_namespace": "default"}
type KeyEntry struct {
	// SHA256 is the lower- or upper-case hex SHA-256 of the whole key, as `sha256sum` prints it.
	SHA256 string `json:"sha256"`
	// Namespaces are the namespaces the key may act in; at least one.
	Namespaces []string `json:"namespaces"`
	// DefaultNamespace is used when a request names none; empty means Namespaces[0].
	DefaultNamespace string `json:"default_namespace,omitempty"`
}

// Principal is who a valid key speaks for: its id and the namespaces it may act in.
type Principal struct {
	// KeyID is the name of the key's entry in the Secret.
	KeyID string
	// Namespaces the key may act in, sorted.
	Namespaces []string
	// DefaultNamespace is used when a request names none.
	DefaultNamespace string
}

// Namespace chooses the namespace a request acts in: the one the request names (query
// parameter or body field; when both are given they must agree), or the key's default. It
// answers 403 for a namespace outside the key's scope.
func (p Principal) Namespace(fromQuery, fromBody string) (string, error) {
	ns := fromQuery
	switch {
	case fromQuery != "" && fromBody != "" && fromQuery != fromBody:
		return "", apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "the namespace query parameter (%q) and the body's namespace (%q) differ; give one", fromQuery, fromBody)
	case ns == "":
		ns = fromBody
	}
	if ns == "" {
		return p.DefaultNamespace, nil
	}
	if err := checkNamespace(ns, "namespace"); err != nil {
		var de *DecodeError
		errors.As(err, &de)
		return "", apierror.Errorf(http.StatusBadRequest, apierror.CodeInvalidRequest, "%s", de.Message)
	}
	if !slices.Contains(p.Namespaces, ns) {
		return "", apierror.Errorf(http.StatusForbidden, apierror.CodeForbidden, "this API key may not act in namespace %q; it may act in: %s", ns, strings.Join(p.Namespaces, ", "))
	}
	return ns, nil
}

// HashKey returns the hex SHA-256 of key: what KeyEntry.SHA256 holds.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewAPIKey mints a random key "<id>.<48 hex digits>" (192 bits of randomness). The id part
// only helps people tell keys apart; the store matches keys by hash alone.
func NewAPIKey(id string) (string, error) {
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("read random bytes for an API key: %w", err)
	}
	return id + "." + hex.EncodeToString(buf), nil
}

// ParseKeysSecret parses "namespace/name", the form of --api-keys-secret.
func ParseKeysSecret(s string) (types.NamespacedName, error) {
	return ParseSecretRef(s, DefaultKeysSecret)
}

// ParseSecretRef parses the "namespace/name" of a Secret, the form flags name Secrets in;
// example shows the form in the error.
func ParseSecretRef(s string, example types.NamespacedName) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return types.NamespacedName{}, fmt.Errorf("the secret %q is not namespace/name, for example %s", s, example)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// errNoKey, errBadKey and errKeysUnavailable are the ways authentication fails.
var (
	errNoKey           = errors.New("no API key")
	errBadKey          = errors.New("invalid API key")
	errKeysUnavailable = errors.New("API keys unavailable")
)

// KeyStore authenticates API keys against the keys Secret. It reads the one Secret through
// the API reader (the manager's cache would watch every Secret of the cluster) and keeps the
// result for a short TTL, so a rotated key works within seconds and without a restart.
type KeyStore struct {
	reader client.Reader
	secret types.NamespacedName
	ttl    time.Duration
	now    func() time.Time

	flight singleflight.Group // one read of the Secret at a time, shared by its waiters

	mu        sync.Mutex
	keys      []storedKey
	checkedAt time.Time     // last read attempt
	fetchedAt time.Time     // last successful read
	retryAt   time.Time     // after a failed read with no copy to serve, no read before this
	backoff   time.Duration // the wait after the last failed read, doubling up to maxKeysBackoff
	problems  ProblemLog
}

// maxKeysBackoff caps the wait between reads of a Secret that cannot be read.
const maxKeysBackoff = 30 * time.Second

// storedKey is a parsed KeyEntry.
type storedKey struct {
	id        string
	hash      [sha256.Size]byte
	principal Principal
}

// NewKeyStore returns a store reading secret through reader; ttl <= 0 means DefaultKeyCacheTTL.
func NewKeyStore(reader client.Reader, secret types.NamespacedName, ttl time.Duration, logger logr.Logger) *KeyStore {
	if ttl <= 0 {
		ttl = DefaultKeyCacheTTL
	}
	return &KeyStore{reader: reader, secret: secret, ttl: ttl, now: time.Now, problems: ProblemLog{Log: logger, Event: "api_keys_problem"}}
}

// Authenticate returns the principal of key. Every stored hash is compared, in constant time,
// so neither timing nor the id tells an attacker how close a guess came.
func (s *KeyStore) Authenticate(ctx context.Context, key string) (Principal, error) {
	if key == "" {
		return Principal{}, errNoKey
	}
	keys, err := s.current(ctx)
	if err != nil {
		return Principal{}, err
	}
	sum := sha256.Sum256([]byte(key))
	var match *storedKey
	for i := range keys {
		if subtle.ConstantTimeCompare(sum[:], keys[i].hash[:]) == 1 {
			match = &keys[i]
		}
	}
	if match == nil {
		return Principal{}, errBadKey
	}
	return match.principal, nil
}

// current returns the keys, re-reading the Secret when the copy is older than the TTL. The
// read happens outside the store's lock, once for all the requests that wait for it, so a slow
// API server holds up only those; after a failed read with no copy to serve, reads back off
// (1 s doubling to 30 s) instead of following every request.
func (s *KeyStore) current(ctx context.Context) ([]storedKey, error) {
	if keys, err, ok := s.cached(); ok {
		return keys, err
	}
	v, err, _ := s.flight.Do("keys", func() (any, error) { return s.refresh(ctx) })
	if err != nil {
		return nil, err
	}
	return v.([]storedKey), nil
}

// cached answers from memory while the copy is fresh, or refuses while a failed read's
// backoff lasts; ok is false when the Secret must be read.
func (s *KeyStore) cached() (keys []storedKey, err error, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch {
	case !s.checkedAt.IsZero() && now.Sub(s.checkedAt) < s.ttl:
		return s.keys, nil, true
	case now.Before(s.retryAt):
		return nil, errKeysUnavailable, true
	}
	return nil, nil, false
}

// refresh reads the Secret and records what came of it: the new keys, the last good copy while
// it is younger than staleKeysGrace, or a refusal and the next backoff.
func (s *KeyStore) refresh(ctx context.Context) ([]storedKey, error) {
	keys, problem, err := s.read(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.checkedAt = now
	switch {
	case err == nil:
		s.report(problem)
		s.keys, s.fetchedAt, s.backoff, s.retryAt = keys, now, 0, time.Time{}
		return keys, nil
	case !s.fetchedAt.IsZero() && now.Sub(s.fetchedAt) < staleKeysGrace:
		s.report(fmt.Sprintf("read the API keys secret %s: %v; serving the copy read at %s", s.secret, err, s.fetchedAt.Format(time.RFC3339)))
		return s.keys, nil
	default:
		s.keys, s.checkedAt = nil, time.Time{}
		s.backoff = min(max(2*s.backoff, time.Second), maxKeysBackoff)
		s.retryAt = now.Add(s.backoff)
		s.report(fmt.Sprintf("read the API keys secret %s: %v; refusing API keys until it can be read (next try in %s)", s.secret, err, s.backoff))
		return nil, errKeysUnavailable
	}
}

// read fetches and parses the Secret. A missing Secret means no keys (every key is refused).
// problem says what is wrong with a Secret that was read ("" when nothing is); the caller
// reports it under the store's lock.
func (s *KeyStore) read(ctx context.Context) (keys []storedKey, problem string, err error) {
	// A client that gives up must not fail the read that other requests wait for.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keysReadTimeout)
	defer cancel()
	var secret corev1.Secret
	err = s.reader.Get(ctx, s.secret, &secret)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Sprintf("the API keys secret %s does not exist: every API key is refused; see docs/rest-api.md to mint one", s.secret), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("get secret: %w", err)
	}
	keys, problems := parseKeys(secret.Data)
	if len(problems) > 0 {
		problem = fmt.Sprintf("the API keys secret %s has entries that are ignored: %s", s.secret, strings.Join(problems, "; "))
	}
	return keys, problem, nil
}

// report logs a problem with the keys once, and nothing while it persists. Messages never
// contain keys or hashes.
func (s *KeyStore) report(problem string) { s.problems.Report(problem) }

// ProblemLog logs a problem with a configuration the manager reads (a Secret, say) once, and
// nothing while it persists; a different problem, or the same one after a fix, is logged
// again. It is not safe for concurrent use: its owner's lock guards it. Messages must never
// carry secrets.
type ProblemLog struct {
	// Log receives the problems.
	Log logr.Logger
	// Event is the log line's message, for example "api_keys_problem".
	Event string

	last string
}

// Report logs problem unless it is the last one logged; an empty problem means all is well.
func (p *ProblemLog) Report(problem string) {
	if problem == p.last {
		return
	}
	p.last = problem
	if problem != "" {
		p.Log.Info(p.Event, "problem", problem)
	}
}

// parseKeys parses the Secret's entries, sorted by id; problems describe entries skipped.
func parseKeys(data map[string][]byte) ([]storedKey, []string) {
	ids := make([]string, 0, len(data))
	for id := range data {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var keys []storedKey
	var problems []string
	for _, id := range ids {
		k, err := parseKey(id, data[id])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, problems
}

// parseKey parses one entry of the Secret.
func parseKey(id string, value []byte) (storedKey, error) {
	var e KeyEntry
	if err := json.Unmarshal(value, &e); err != nil {
		return storedKey{}, fmt.Errorf(`not JSON of the form {"sha256": "...", "namespaces": ["..."]}: %w`, err)
	}
	hash, err := hex.DecodeString(strings.TrimSpace(e.SHA256))
	if err != nil || len(hash) != sha256.Size {
		return storedKey{}, errors.New("sha256 is not 64 hex digits")
	}
	if len(e.Namespaces) == 0 {
		return storedKey{}, errors.New("namespaces is empty")
	}
	for _, ns := range e.Namespaces {
		if len(validation.IsDNS1123Label(ns)) > 0 {
			return storedKey{}, fmt.Errorf("namespaces holds %q, which is not a namespace name", ns)
		}
	}
	namespaces := slices.Clone(e.Namespaces)
	def := e.DefaultNamespace
	if def == "" {
		def = namespaces[0]
	}
	if !slices.Contains(namespaces, def) {
		return storedKey{}, fmt.Errorf("default_namespace %q is not one of namespaces", def)
	}
	sort.Strings(namespaces)
	k := storedKey{id: id, principal: Principal{KeyID: id, Namespaces: slices.Compact(namespaces), DefaultNamespace: def}}
	copy(k.hash[:], hash)
	return k, nil
}
