package manager_test

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/controllers"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/manager"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
)

// TestEnsureSecretsCreatesWhatIsMissingAndNeverTouchesWhatExists runs the one-shot mode
// (manager --ensure-secrets, through Run) against a real API server: in one namespace it creates
// both Secrets; in another, where the API keys Secret exists, it leaves that Secret exactly as it
// was and creates only the console's; a second run changes nothing.
func TestEnsureSecretsCreatesWhatIsMissingAndNeverTouchesWhatExists(t *testing.T) {
	cluster, err := testcluster.Start(testcluster.Options{UnsafeNoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cluster.Stop() }()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := cluster.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	ctx := context.Background()
	c, err := client.New(cluster.Config(), client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"fresh", "kept"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	existing := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kept", Name: "keys"},
		Data:       map[string][]byte{"ci": []byte(`{"sha256":"00","namespaces":["default"]}`)},
	}
	if err := c.Create(ctx, existing); err != nil {
		t.Fatal(err)
	}

	run := func(ns string) {
		t.Helper()
		o := manager.DefaultOptions()
		o.EnsureSecrets = true
		o.APIKeysSecret, o.ConsoleSecret = ns+"/keys", ns+"/console"
		if err := manager.Run(o); err != nil {
			t.Fatalf("--ensure-secrets in %s: %v", ns, err)
		}
	}
	get := func(ns, name string) *corev1.Secret {
		t.Helper()
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatalf("secret %s/%s: %v", ns, name, err)
		}
		return &s
	}

	run("fresh")
	if keys := get("fresh", "keys"); len(keys.Data) != 0 {
		t.Errorf("the new API keys Secret holds %d entries; want none", len(keys.Data))
	}
	t.Log("docs/install.md's merge patch adds the first key to the empty Secret")
	patch := []byte(`{"data":{"ci":"` + base64.StdEncoding.EncodeToString([]byte(`{"sha256":"00","namespaces":["default"]}`)) + `"}}`)
	if err := c.Patch(ctx, get("fresh", "keys"), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatalf("merge patch of the empty keys Secret: %v", err)
	}
	if keys := get("fresh", "keys"); len(keys.Data["ci"]) == 0 {
		t.Error("the merge patch added no key")
	}
	session := get("fresh", "console")
	if key := session.Data[console.SecretKey]; len(key) < console.MinSecretBytes {
		t.Errorf("the session key has %d bytes; want at least %d", len(key), console.MinSecretBytes)
	}

	run("kept")
	if kept := get("kept", "keys"); kept.ResourceVersion != existing.ResourceVersion || !reflect.DeepEqual(kept.Data, existing.Data) {
		t.Errorf("the existing API keys Secret changed: resourceVersion %s -> %s, data %q", existing.ResourceVersion, kept.ResourceVersion, kept.Data)
	}
	get("kept", "console")

	t.Log("a second run is a no-op")
	run("fresh")
	if again := get("fresh", "console"); again.ResourceVersion != session.ResourceVersion || !reflect.DeepEqual(again.Data, session.Data) {
		t.Error("a second run changed the console's session Secret")
	}

	o := manager.DefaultOptions()
	o.EnsureSecrets = true
	o.APIKeysSecret, o.ConsoleSecret = "missing/keys", "missing/console"
	if err := manager.Run(o); err == nil {
		t.Error("--ensure-secrets in a namespace that does not exist succeeded")
	} else {
		t.Logf("in a namespace that does not exist: %v", err)
	}
}
