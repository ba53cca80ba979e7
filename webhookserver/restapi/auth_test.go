package restapi_test

import (
	"context"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	"github.com/centaur-dev/workflow-operator/webhookserver/apierror"
	"github.com/centaur-dev/workflow-operator/webhookserver/restapi"
)

var _ = Describe("API keys", func() {
	It("answers 401 without a key or with a wrong one, on every keyed endpoint", func() {
		for _, rt := range restapi.Routes() {
			if rt.Public {
				continue
			}
			path := "/" + rt.Path[len("/api/"):]
			for _, key := range []string{"", "admin.wrong", adminKey + "x"} {
				r := send(rt.Method, replaceID(path), key, "{}")
				expectError(r, http.StatusUnauthorized, apierror.CodeUnauthorized)
				Expect(r.header.Get("WWW-Authenticate")).To(ContainSubstring("X-Api-Key"))
			}
		}
	})

	It("acts in the key's default namespace and refuses others with 403", func() {
		r := curlPost("/workflows/runs", teamBKey, `{"workflow_name": "hello", "input": {"name": "B"}}`)
		Expect(r.status).To(Equal(http.StatusCreated), "body: %s", r.body)
		Expect(as[restapi.RunDetail](r).Namespace).To(Equal("team-b"))
		e := expectError(send(http.MethodGet, "/workflows/runs?namespace=default", teamBKey, ""), http.StatusForbidden, apierror.CodeForbidden)
		Expect(e.Message).To(ContainSubstring(`namespace "default"`))
	})

	It("takes a rotated key within seconds, without a restart", func() {
		oldKey, err := restapi.NewAPIKey("rotating")
		Expect(err).NotTo(HaveOccurred())
		newKey, err := restapi.NewAPIKey("rotating")
		Expect(err).NotTo(HaveOccurred())
		setKey := func(key string) {
			secret := &corev1.Secret{}
			Expect(k8sClient.Get(context.Background(), restapi.DefaultKeysSecret, secret)).To(Succeed())
			secret.Data["rotating"] = mustJSON(restapi.KeyEntry{SHA256: restapi.HashKey(key), Namespaces: []string{"team-a"}})
			Expect(k8sClient.Update(context.Background(), secret)).To(Succeed())
		}
		statusWith := func(key string) func() int {
			return func() int { return send(http.MethodGet, "/workflows/runs?limit=1", key, "").status }
		}

		setKey(oldKey)
		Eventually(statusWith(oldKey), 10*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		setKey(newKey)
		Eventually(statusWith(newKey), 10*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK))
		Expect(statusWith(oldKey)()).To(Equal(http.StatusUnauthorized))
	})
})

// replaceID fills a route's {id} with a run name.
func replaceID(path string) string {
	for i := 0; i+4 <= len(path); i++ {
		if path[i:i+4] == "{id}" {
			return path[:i] + "some-run" + path[i+4:]
		}
	}
	return path
}
