package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/webhookserver/console"
)

// ensureConsoleSecret creates the web console's session secret (console.DefaultSecret, the
// default of --console-secret) with a random session key, unless it exists: sign-ins then
// survive restarts of the manager, as they would in a cluster. Its namespace exists already
// (ensureDevAPIKey creates it).
func ensureConsoleSecret(ctx context.Context, c client.Client) error {
	raw := make([]byte, console.MinSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate a session key: %w", err)
	}
	ref := console.DefaultSecret
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name},
		Data:       map[string][]byte{console.SecretKey: []byte(hex.EncodeToString(raw))},
	}
	if err := c.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create secret %s: %w", ref, err)
	}
	return nil
}
