package restapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
)

func keysSecret(data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: DefaultKeysSecret.Namespace, Name: DefaultKeysSecret.Name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func entry(key string, namespaces ...string) string {
	return `{"sha256":"` + HashKey(key) + `","namespaces":["` + strings.Join(namespaces, `","`) + `"]}`
}

// outage wraps a reader that reaches the API server and fails its reads while down is set,
// as an unreachable API server would, counting the reads it was asked for.
type outage struct {
	client.Reader
	down  atomic.Bool
	reads atomic.Int32
}

func (o *outage) Get(ctx context.Context, key types.NamespacedName, obj client.Object, opts ...client.GetOption) error {
	o.reads.Add(1)
	if o.down.Load() {
		return errors.New("connection refused")
	}
	return o.Reader.Get(ctx, key, obj, opts...)
}

// TestKeyStore runs the key store against a real API server: each subtest owns the keys
// Secret while it runs.
func TestKeyStore(t *testing.T) {
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Stop() }()
	cfg := cluster.Config()
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultKeysSecret.Namespace}}); err != nil {
		t.Fatal(err)
	}
	// withSecret stores data as the keys Secret for one subtest (none when nil).
	withSecret := func(t *testing.T, data map[string]string) *corev1.Secret {
		t.Helper()
		if data == nil {
			return nil
		}
		secret := keysSecret(data)
		if err := c.Create(ctx, secret); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, secret) })
		return secret
	}

	t.Run("authenticates by hash", func(t *testing.T) {
		withSecret(t, map[string]string{
			"ci":     entry("ci.secret", "team-a", "team-b"),
			"broken": `{"sha256":"nothex","namespaces":["x"]}`,
			"upper":  `{"sha256":"` + strings.ToUpper(HashKey("upper.secret")) + `","namespaces":["b","a"],"default_namespace":"b"}`,
		})
		store := NewKeyStore(c, DefaultKeysSecret, time.Hour, logr.Discard())
		p, err := store.Authenticate(ctx, "ci.secret")
		if err != nil || p.KeyID != "ci" || p.DefaultNamespace != "team-a" || strings.Join(p.Namespaces, ",") != "team-a,team-b" {
			t.Fatalf("ci key: %+v, %v", p, err)
		}
		if p, err := store.Authenticate(ctx, "upper.secret"); err != nil || p.DefaultNamespace != "b" {
			t.Fatalf("upper-case hash: %+v, %v", p, err)
		}
		for _, key := range []string{"ci.secreT", "ci", "nothex", ""} {
			if _, err := store.Authenticate(ctx, key); err == nil {
				t.Errorf("key %q accepted", key)
			}
		}
	})

	t.Run("sees a rotation after its TTL", func(t *testing.T) {
		secret := withSecret(t, map[string]string{"k": entry("old", "default")})
		store := NewKeyStore(c, DefaultKeysSecret, time.Minute, logr.Discard())
		now := time.Now()
		store.now = func() time.Time { return now }
		if _, err := store.Authenticate(ctx, "old"); err != nil {
			t.Fatal(err)
		}
		secret.Data["k"] = []byte(entry("new", "default"))
		if err := c.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Authenticate(ctx, "old"); err != nil {
			t.Fatal("the cached copy should still hold the old key within the TTL")
		}
		now = now.Add(time.Minute)
		if _, err := store.Authenticate(ctx, "old"); !errors.Is(err, errBadKey) {
			t.Fatalf("old key after rotation: %v", err)
		}
		if _, err := store.Authenticate(ctx, "new"); err != nil {
			t.Fatalf("new key after rotation: %v", err)
		}
	})

	t.Run("serves its last copy briefly while the API server is down, then backs off", func(t *testing.T) {
		withSecret(t, map[string]string{"k": entry("key", "default")})
		reader := &outage{Reader: c}
		store := NewKeyStore(reader, DefaultKeysSecret, time.Second, logr.Discard())
		now := time.Now()
		store.now = func() time.Time { return now }
		if _, err := store.Authenticate(ctx, "key"); err != nil {
			t.Fatal(err)
		}
		reader.down.Store(true)
		now = now.Add(30 * time.Second)
		if _, err := store.Authenticate(ctx, "key"); err != nil {
			t.Fatalf("within the grace period: %v", err)
		}
		now = now.Add(2 * time.Minute)
		if _, err := store.Authenticate(ctx, "key"); !errors.Is(err, errKeysUnavailable) {
			t.Fatalf("after the grace period: %v", err)
		}
		before := reader.reads.Load()
		for range 50 {
			if _, err := store.Authenticate(ctx, "key"); !errors.Is(err, errKeysUnavailable) {
				t.Fatalf("during the backoff: %v", err)
			}
		}
		if got := reader.reads.Load() - before; got != 0 {
			t.Errorf("50 requests during the backoff read the Secret %d times, want none", got)
		}
		reader.down.Store(false)
		now = now.Add(maxKeysBackoff)
		if _, err := store.Authenticate(ctx, "key"); err != nil {
			t.Fatalf("once the API server is back: %v", err)
		}
	})

	t.Run("reads the Secret once for many concurrent requests", func(t *testing.T) {
		withSecret(t, map[string]string{"k": entry("key", "default")})
		reader := &outage{Reader: c}
		store := NewKeyStore(reader, DefaultKeysSecret, time.Hour, logr.Discard())
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := store.Authenticate(ctx, "key"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := reader.reads.Load(); got > 2 {
			t.Errorf("50 concurrent first requests read the Secret %d times", got)
		}
	})

	t.Run("refuses every key without the Secret", func(t *testing.T) {
		withSecret(t, nil)
		store := NewKeyStore(c, DefaultKeysSecret, time.Second, logr.Discard())
		if _, err := store.Authenticate(ctx, "anything"); !errors.Is(err, errBadKey) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestPrincipalNamespace(t *testing.T) {
	p := Principal{KeyID: "k", Namespaces: []string{"a", "b"}, DefaultNamespace: "a"}
	cases := []struct {
		query, body, want string
		status            int
	}{
		{"", "", "a", 0},
		{"b", "", "b", 0},
		{"", "b", "b", 0},
		{"b", "b", "b", 0},
		{"a", "b", "", 400},
		{"c", "", "", 403},
		{"Bad_NS", "", "", 400},
	}
	for _, c := range cases {
		got, err := p.Namespace(c.query, c.body)
		var ae *apierror.Error
		switch {
		case c.status == 0 && (err != nil || got != c.want):
			t.Errorf("%q/%q: got %q, %v", c.query, c.body, got, err)
		case c.status != 0 && (!errors.As(err, &ae) || ae.Status != c.status):
			t.Errorf("%q/%q: got %v, want %d", c.query, c.body, err, c.status)
		}
	}
}

func TestParseKeysSecret(t *testing.T) {
	if got, err := ParseKeysSecret("centaur-system/centaur-api-keys"); err != nil || got != DefaultKeysSecret {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "name", "/name", "ns/", "NS/x", "a/b/c"} {
		if _, err := ParseKeysSecret(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
