package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/manager"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// devAPIKeyBytes is the length of a dev API key before hex encoding: 32 random bytes, 64 hex
// characters.
const devAPIKeyBytes = 32

// ensureDevAPIKey returns the REST API key of the dev cluster, the value clients send as
// X-Api-Key, and keeps it in the file at path so it survives restarts of `make dev`.
//
// When the file does not exist it writes a new random key (32 bytes, hex encoded) there with
// mode 0600; when it exists it returns the key it holds. Then, through c (the admin client of
// the dev cluster), it stores the key's SHA-256 as entry "dev" of the Secret the manager reads
// keys from (restapi.DefaultKeysSecret, the default of --api-keys-secret), scoped to namespace
// default, so the README's curl lines work as they are. A nil c only keeps the file (tests).
func ensureDevAPIKey(ctx context.Context, c client.Client, path string) (string, error) {
	key, err := readAPIKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = writeNewAPIKey(path)
	}
	if err != nil {
		return "", err
	}
	if c == nil {
		return key, nil
	}
	if err := storeDevAPIKeyHash(ctx, c, key); err != nil {
		return "", err
	}
	return key, nil
}

// devAPIKeyID is the name of the dev key's entry in the keys Secret.
const devAPIKeyID = "dev"

// storeDevAPIKeyHash makes entry devAPIKeyID of the keys Secret hold key's hash, scoped to
// namespace default and the operator's namespace (where the runs of declared webhooks and
// schedules live), creating the Secret's namespace and the Secret as needed. Other entries
// are left alone; the manager picks the change up within seconds, without a restart.
func storeDevAPIKeyHash(ctx context.Context, c client.Client, key string) error {
	entry, err := json.Marshal(restapi.KeyEntry{SHA256: restapi.HashKey(key), Namespaces: []string{"default", manager.DefaultOperatorNamespace}, DefaultNamespace: "default"})
	if err != nil {
		return fmt.Errorf("encode the dev API key entry: %w", err)
	}
	ref := restapi.DefaultKeysSecret
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ref.Namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s for the API keys: %w", ref.Namespace, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var secret corev1.Secret
		err := c.Get(ctx, ref, &secret)
		if apierrors.IsNotFound(err) {
			secret = corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name},
				Data:       map[string][]byte{devAPIKeyID: entry},
			}
			return c.Create(ctx, &secret)
		}
		if err != nil {
			return err
		}
		if bytes.Equal(secret.Data[devAPIKeyID], entry) {
			return nil
		}
		if secret.Data == nil {
			secret.Data = map[string][]byte{}
		}
		secret.Data[devAPIKeyID] = entry
		return c.Update(ctx, &secret)
	})
	if err != nil {
		return fmt.Errorf("store the dev API key's hash in secret %s: %w", ref, err)
	}
	return nil
}

// readAPIKey reads a key written by writeNewAPIKey; surrounding whitespace is ignored.
func readAPIKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the API key %s: %w", path, err)
	}
	key := strings.TrimSpace(string(data))
	if key == "" {
		return "", fmt.Errorf("the API key file %s is empty: delete it and a new key is generated on the next start", path)
	}
	return key, nil
}

// writeNewAPIKey creates path (failing if it exists, so a key is never overwritten) with a new
// random key and mode 0600.
func writeNewAPIKey(path string) (string, error) {
	raw := make([]byte, devAPIKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate an API key: %w", err)
	}
	key := hex.EncodeToString(raw)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create the API key file %s: %w", path, err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return "", fmt.Errorf("write the API key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("write the API key file %s: %w", path, err)
	}
	return key, nil
}
