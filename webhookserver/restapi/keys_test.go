package restapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
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

func TestKeyStoreAuthenticatesByHash(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(keysSecret(map[string]string{
		"ci":     entry("ci.secret", "team-a", "team-b"),
		"broken": `{"sha256":"nothex","namespaces":["x"]}`,
		"upper":  `{"sha256":"` + strings.ToUpper(HashKey("upper.secret")) + `","namespaces":["b","a"],"default_namespace":"b"}`,
	})).Build()
	store := NewKeyStore(c, DefaultKeysSecret, time.Hour, logr.Discard())

	p, err := store.Authenticate(context.Background(), "ci.secret")
	if err != nil || p.KeyID != "ci" || p.DefaultNamespace != "team-a" || strings.Join(p.Namespaces, ",") != "team-a,team-b" {
		t.Fatalf("ci key: %+v, %v", p, err)
	}
	if p, err := store.Authenticate(context.Background(), "upper.secret"); err != nil || p.DefaultNamespace != "b" {
		t.Fatalf("upper-case hash: %+v, %v", p, err)
	}
	for _, key := range []string{"ci.secreT", "ci", "nothex", ""} {
		if _, err := store.Authenticate(context.Background(), key); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
}

func TestKeyStoreSeesRotationAfterItsTTL(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	secret := keysSecret(map[string]string{"k": entry("old", "default")})
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(secret).Build()
	store := NewKeyStore(c, DefaultKeysSecret, time.Minute, logr.Discard())
	now := time.Now()
	store.now = func() time.Time { return now }
	ctx := context.Background()
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
}

// failingReader fails every read, as an unreachable API server would.
type failingReader struct{ client.Reader }

func (failingReader) Get(context.Context, types.NamespacedName, client.Object, ...client.GetOption) error {
	return errors.New("connection refused")
}

func TestKeyStoreServesItsLastCopyBrieflyWhenTheAPIServerIsDown(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(keysSecret(map[string]string{"k": entry("key", "default")})).Build()
	store := NewKeyStore(c, DefaultKeysSecret, time.Second, logr.Discard())
	now := time.Now()
	store.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := store.Authenticate(ctx, "key"); err != nil {
		t.Fatal(err)
	}
	store.reader = failingReader{}
	now = now.Add(30 * time.Second)
	if _, err := store.Authenticate(ctx, "key"); err != nil {
		t.Fatalf("within the grace period: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := store.Authenticate(ctx, "key"); !errors.Is(err, errKeysUnavailable) {
		t.Fatalf("after the grace period: %v", err)
	}
}

func TestMissingSecretRefusesEveryKey(t *testing.T) {
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	store := NewKeyStore(fake.NewClientBuilder().WithScheme(scheme).Build(), DefaultKeysSecret, time.Second, logr.Discard())
	if _, err := store.Authenticate(context.Background(), "anything"); !errors.Is(err, errBadKey) {
		t.Fatalf("got %v", err)
	}
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
		var ae *apiError
		switch {
		case c.status == 0 && (err != nil || got != c.want):
			t.Errorf("%q/%q: got %q, %v", c.query, c.body, got, err)
		case c.status != 0 && (!errors.As(err, &ae) || ae.status != c.status):
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
