package deploycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/internal/testenv"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

// signInAndOut signs in to the web console of the manager at api with a fresh REST key and
// signs out, which records the session in the console's sign-out ConfigMap: the manager's
// ServiceAccount must be allowed to create and update it (config/rbac).
func signInAndOut(ctx context.Context, t *testing.T, admin client.Client, api string) {
	t.Helper()
	key := "deploycheck.0123456789abcdef0123456789abcdef"
	entry, err := json.Marshal(restapi.KeyEntry{SHA256: restapi.HashKey(key), Namespaces: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	keys := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: restapi.DefaultKeysSecret.Namespace, Name: restapi.DefaultKeysSecret.Name},
		Data: map[string][]byte{"deploycheck": entry}}
	if err := admin.Create(ctx, keys); err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	testenv.WaitFor(t, 30*time.Second, "the console to accept the new key", func() error {
		_, err := send(browser, http.MethodPost, api+"/console/sign-in", url.Values{"key": {key}})
		return err
	})
	page, err := send(browser, http.MethodGet, api+"/console/runs", nil)
	if err != nil {
		t.Fatal(err)
	}
	const marker = `name="csrf" value="`
	_, token, found := strings.Cut(page, marker)
	if !found {
		t.Fatalf("no CSRF token in the runs page:\n%s", page)
	}
	token, _, _ = strings.Cut(token, `"`)
	if _, err := send(browser, http.MethodPost, api+"/console/sign-out", url.Values{"csrf": {token}}); err != nil {
		t.Fatal(err)
	}
	signOuts := client.ObjectKey{Namespace: console.DefaultSecret.Namespace, Name: console.DefaultSecret.Name + console.RevocationsSuffix}
	var cm corev1.ConfigMap
	if err := admin.Get(ctx, signOuts, &cm); err != nil || len(cm.Data) != 1 {
		t.Errorf("the sign-out was not recorded in ConfigMap %s: %v, %d entries", signOuts, err, len(cm.Data))
	}
}

// send makes one request as a browser would (a form for POST) and returns the body of a 200
// or the target of a 303; any other answer is an error.
func send(c *http.Client, method, target string, form url.Values) (string, error) {
	req, err := http.NewRequest(method, target, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return "", err
	case resp.StatusCode == http.StatusOK:
		return string(body), nil
	case resp.StatusCode == http.StatusSeeOther && !strings.Contains(resp.Header.Get("Location"), "sign-in"):
		return resp.Header.Get("Location"), nil
	case resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "why=signed-out"):
		return resp.Header.Get("Location"), nil
	}
	return "", fmt.Errorf("%s %s: %d %s %s", method, target, resp.StatusCode, resp.Header.Get("Location"), body)
}
