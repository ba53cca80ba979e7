package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/webhookserver/console"
)

// The one-shot mode `manager --ensure-secrets` (the Helm chart's pre-install and pre-upgrade
// hook Job runs it): it creates the Secrets the manager reads when they are missing, and exits.
// It never reads, updates or overwrites an existing Secret: a create that finds one
// (AlreadyExists) is success, so it needs only the permission to create Secrets, and a second
// run changes nothing.

// ensureSecrets is Run's one-shot mode (--ensure-secrets): EnsureSecrets through the kubeconfig
// the manager would use, within a minute.
func ensureSecrets(keys, session types.NamespacedName) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find a kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("a client of the API server: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return EnsureSecrets(ctx, c, ctrl.Log.WithName("ensure-secrets"), keys, session)
}

// EnsureSecrets creates, unless they exist, the REST API's keys Secret keys (with no keys: add
// one as docs/install.md "With Helm" says; a key's plaintext is never generated or logged
// here) and the web console's session Secret session (a random key of console.MinSecretBytes
// bytes, hex encoded, under console.SecretKey). Their namespaces must exist.
func EnsureSecrets(ctx context.Context, c client.Client, log logr.Logger, keys, session types.NamespacedName) error {
	if err := createUnlessExists(ctx, c, log, keys, map[string][]byte{}, "the REST API's key hashes",
		"it holds no key yet: add one as docs/install.md \"With Helm\" says"); err != nil {
		return err
	}
	return EnsureConsoleSecret(ctx, c, log, session)
}

// EnsureConsoleSecret creates the web console's session Secret ref with a new random session
// key unless a Secret of that name exists, which it leaves as it is.
func EnsureConsoleSecret(ctx context.Context, c client.Client, log logr.Logger, ref types.NamespacedName) error {
	raw := make([]byte, console.MinSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate a session key: %w", err)
	}
	data := map[string][]byte{console.SecretKey: []byte(hex.EncodeToString(raw))}
	return createUnlessExists(ctx, c, log, ref, data, "the web console's session key", "")
}

// createUnlessExists creates Secret ref holding data, unless it exists; next, when set, is
// what to do with a new one.
func createUnlessExists(ctx context.Context, c client.Client, log logr.Logger, ref types.NamespacedName, data map[string][]byte, what, next string) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name,
			Labels: map[string]string{"app.kubernetes.io/created-by": "centaur-ensure-secrets"}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	err := c.Create(ctx, secret)
	switch {
	case err == nil:
		if next != "" {
			log.Info("secret_created", "secret", ref.String(), "holds", what, "next", next)
		} else {
			log.Info("secret_created", "secret", ref.String(), "holds", what)
		}
		return nil
	case apierrors.IsAlreadyExists(err):
		log.Info("secret_exists", "secret", ref.String(), "holds", what, "note", "left as it is")
		return nil
	case apierrors.IsForbidden(err):
		return fmt.Errorf("create secret %s (%s): forbidden: the ServiceAccount needs get and create on secrets in namespace %s: %w", ref, what, ref.Namespace, err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("create secret %s (%s): namespace %s does not exist: %w", ref, what, ref.Namespace, err)
	default:
		return fmt.Errorf("create secret %s (%s): %w", ref, what, err)
	}
}
