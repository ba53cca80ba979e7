package console

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// Sign-outs. A cookie carries its whole session, so a browser that forgets it does not end it:
// a copy (a shared machine, a proxy's log) would work until SessionMaxAge. Signing out
// therefore records the session as revoked in a ConfigMap beside the session Secret (its name
// plus RevocationsSuffix, in its namespace), which every replica reads: one entry per session,
// keyed by the SHA-256 of the session's id (its CSRF token, random per sign-in) and holding
// when the session would expire anyway (Unix seconds). The replica that serves the sign-out
// refuses the cookie at once, the others once they re-read the ConfigMap (every
// revocationTTL). Each write drops expired entries and keeps at most MaxRevocations, the ones
// that expire first giving way. When the ConfigMap cannot be written the sign-out still clears
// the cookie and this replica still refuses it, and the log says that the session stays valid
// elsewhere until it expires.
const (
	// RevocationsSuffix ends the name of the ConfigMap of signed-out sessions: the console
	// Secret's name plus this, in the Secret's namespace (centaur-console-sign-outs by default).
	RevocationsSuffix = "-sign-outs"
	// MaxRevocations is how many signed-out sessions the ConfigMap holds at most (about
	// 80 bytes each).
	MaxRevocations = 5000
	// revocationTTL is how long a read of the ConfigMap is trusted: how late another replica
	// may refuse a signed-out cookie.
	revocationTTL = 3 * time.Second
	// revocationTimeout bounds one read, and one write with its retries, of the ConfigMap.
	revocationTimeout = 5 * time.Second
)

// revocations is the list of signed-out sessions that every replica shares.
type revocations struct {
	reader client.Reader
	writer client.Writer
	name   types.NamespacedName
	now    func() time.Time
	log    logr.Logger

	mu         sync.Mutex
	shared     map[string]int64 // read from the ConfigMap: session hash -> expiry
	version    string           // the ConfigMap's resourceVersion when shared was read
	own        map[string]int64 // signed out on this replica, written or not
	checkedAt  time.Time
	refreshing bool
	problems   restapi.ProblemLog
}

// newRevocations keeps the list in the ConfigMap name, read through reader and written through
// writer; either nil keeps it in this process only.
func newRevocations(reader client.Reader, writer client.Writer, name types.NamespacedName, logger logr.Logger) *revocations {
	return &revocations{reader: reader, writer: writer, name: name, now: time.Now, log: logger, own: map[string]int64{},
		problems: restapi.ProblemLog{Log: logger, Event: "console_sign_outs_problem"}}
}

// revocationsOf names the ConfigMap of signed-out sessions beside the console Secret.
func revocationsOf(secret types.NamespacedName) types.NamespacedName {
	return types.NamespacedName{Namespace: secret.Namespace, Name: secret.Name + RevocationsSuffix}
}

// sessionHash is the name of a session in the list: the SHA-256 of its id, so that the
// ConfigMap holds nothing a cookie or a form could be made from.
func sessionHash(s session) string {
	sum := sha256.Sum256([]byte(s.CSRF))
	return hex.EncodeToString(sum[:])
}

// sessionExpiry is when s expires anyway (Unix seconds).
func sessionExpiry(s session) int64 { return s.Issued + int64(SessionMaxAge/time.Second) }

// revoked reports whether s was signed out, here or (as of the last read) on any replica.
func (l *revocations) revoked(ctx context.Context, s session) bool {
	l.refresh(ctx)
	id := sessionHash(s)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, here := l.own[id]
	_, shared := l.shared[id]
	return here || shared
}

// refresh re-reads the ConfigMap once the last read is older than revocationTTL. One request
// reads while the others go on with the last copy; a failed read keeps the last copy, says so
// in the log, and is tried again after revocationTTL.
func (l *revocations) refresh(ctx context.Context) {
	l.mu.Lock()
	if l.reader == nil || l.refreshing || l.now().Sub(l.checkedAt) < revocationTTL {
		l.mu.Unlock()
		return
	}
	known := l.version
	l.refreshing = true
	l.mu.Unlock()

	entries, version, err := l.read(ctx, known)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refreshing, l.checkedAt = false, l.now()
	if err != nil {
		l.problems.Report(fmt.Sprintf("%v; sessions signed out on other replicas are refused here once it can be read", err))
		return
	}
	if entries != nil {
		l.shared = entries
	}
	l.version = version
	l.problems.Report("")
}

// read fetches the list: no entries (nil) when the ConfigMap is still at the known
// resourceVersion, which a read of its metadata tells, so that a full list is not read every
// few seconds for nothing; its entries otherwise, and an empty list when it is missing.
func (l *revocations) read(ctx context.Context, known string) (map[string]int64, string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revocationTimeout)
	defer cancel()
	if known != "" {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
		if err := l.reader.Get(ctx, l.name, meta); err == nil && meta.ResourceVersion == known {
			return nil, known, nil
		}
	}
	var cm corev1.ConfigMap
	err := l.reader.Get(ctx, l.name, &cm)
	switch {
	case apierrors.IsNotFound(err):
		return map[string]int64{}, "", nil
	case err != nil:
		return nil, "", fmt.Errorf("read the console's signed-out sessions, ConfigMap %s: %w", l.name, err)
	}
	return parseRevocations(cm.Data), cm.ResourceVersion, nil
}

// parseRevocations reads a ConfigMap's entries, skipping any that is not a hash and a time.
func parseRevocations(data map[string]string) map[string]int64 {
	out := make(map[string]int64, len(data))
	for id, v := range data {
		if expiry, err := strconv.ParseInt(v, 10, 64); err == nil && len(id) == 2*sha256.Size {
			out[id] = expiry
		}
	}
	return out
}

// errNoSharedList is why a sign-out is not shared when the console has no client to write with.
var errNoSharedList = errors.New("the console has no client to write its signed-out sessions with")

// revoke signs s out: at once on this replica, and on the others through the ConfigMap. An
// error says the ConfigMap was not written, so other replicas accept s until it expires.
func (l *revocations) revoke(ctx context.Context, s session) error {
	id, expiry, now := sessionHash(s), sessionExpiry(s), l.now()
	l.mu.Lock()
	l.own, _ = withRevocation(l.own, id, expiry, now)
	l.mu.Unlock()
	if l.reader == nil || l.writer == nil {
		return errNoSharedList
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revocationTimeout)
	defer cancel()
	retriable := func(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }
	if err := retry.OnError(retry.DefaultRetry, retriable, func() error { return l.write(ctx, id, expiry) }); err != nil {
		return fmt.Errorf("record the sign-out in ConfigMap %s: %w", l.name, err)
	}
	return nil
}

// write adds one entry to the ConfigMap, creating it when it is missing, and prunes it.
func (l *revocations) write(ctx context.Context, id string, expiry int64) error {
	var cm corev1.ConfigMap
	err := l.reader.Get(ctx, l.name, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: l.name.Namespace, Name: l.name.Name,
			Labels: map[string]string{"app.kubernetes.io/name": "workflow-operator", "app.kubernetes.io/component": "console"}}}
	case err != nil:
		return fmt.Errorf("read it: %w", err)
	}
	entries, dropped := withRevocation(parseRevocations(cm.Data), id, expiry, l.now())
	if dropped > 0 {
		l.log.Info("console_sign_outs_full", "configMap", l.name.String(), "max", MaxRevocations, "dropped", dropped,
			"problem", "the signed-out sessions that expire first were dropped and are accepted again until they expire")
	}
	cm.Data = formatRevocations(entries)
	if cm.ResourceVersion == "" {
		return l.writer.Create(ctx, &cm)
	}
	return l.writer.Update(ctx, &cm)
}

// withRevocation adds id to entries and returns them without those expired at now, and at most
// MaxRevocations, dropping the others that expire first; dropped counts the unexpired ones
// dropped.
func withRevocation(entries map[string]int64, id string, expiry int64, now time.Time) (map[string]int64, int) {
	out := make(map[string]int64, len(entries)+1)
	for k, v := range entries {
		if v >= now.Unix() {
			out[k] = v
		}
	}
	out[id] = expiry
	if len(out) <= MaxRevocations {
		return out, 0
	}
	ids := make([]string, 0, len(out))
	for k := range out {
		if k != id {
			ids = append(ids, k)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(out[a], out[b]) })
	dropped := len(out) - MaxRevocations
	for _, k := range ids[:dropped] {
		delete(out, k)
	}
	return out, dropped
}

// formatRevocations is the ConfigMap's data for entries.
func formatRevocations(entries map[string]int64) map[string]string {
	out := make(map[string]string, len(entries))
	for k, v := range entries {
		out[k] = strconv.FormatInt(v, 10)
	}
	return out
}
