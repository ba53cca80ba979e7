package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
)

// signOutsConfigMap is where the suite's consoles record signed-out sessions.
var signOutsConfigMap = types.NamespacedName{Namespace: console.DefaultSecret.Namespace, Name: console.DefaultSecret.Name + console.RevocationsSuffix}

// A cookie carries its session: these specs check that signing out ends it for a copy of the
// cookie too (a shared machine, a proxy's log), on the replica that served the sign-out at
// once and on the others within seconds.
var _ = Describe("Signing out", func() {
	It("refuses a copy of the cookie taken before, on every replica, on pages, actions and live streams", func() {
		otherReplica := extraConsole(console.Deps{Client: k8sClient})
		earlier := newVisitor()
		Expect(earlier.post("/console/sign-out", url.Values{"csrf": {earlier.signIn(adminKey)}}).status).To(Equal(http.StatusSeeOther), "an earlier sign-out: the list exists")
		v := newVisitor()
		token := v.signIn(adminKey)
		cookie := sessionCookie(v)
		Expect(withCookie(baseURL, cookie).get("/console/runs").status).To(Equal(http.StatusOK))
		Expect(withCookie(otherReplica, cookie).get("/console/runs").status).To(Equal(http.StatusOK), "the other replica has read the sign-outs before")
		stream := openStream(withCookie(baseURL, cookie), "/console/runs/live")
		DeferCleanup(stream.close)
		stillIn := newVisitor()
		stillIn.signIn(adminKey)

		p := v.post("/console/sign-out", url.Values{"csrf": {token}})
		Expect(p.status).To(Equal(http.StatusSeeOther))
		Expect(p.header.Get("Location")).To(Equal("/console/sign-in?why=signed-out"))
		Expect(p.header.Get("Set-Cookie")).To(ContainSubstring("Max-Age=0"))
		signedOutAt := time.Now()

		copied := withCookie(baseURL, cookie).get("/console/runs")
		Expect(copied.status).To(Equal(http.StatusSeeOther), "the replica that served the sign-out refuses the copy at once")
		Expect(copied.header.Get("Location")).To(ContainSubstring("why=signed-out"))
		Expect(copied.header.Get("Set-Cookie")).To(ContainSubstring("Max-Age=0"))
		Expect(withCookie(baseURL, cookie).post("/console/workflows/hello/runs", url.Values{"csrf": {token}, "input": {`{"name":"x"}`}}).header.Get("Location")).
			To(ContainSubstring("why=signed-out"), "and its forms")

		Eventually(func() string {
			return withCookie(otherReplica, cookie).get("/console/runs").header.Get("Location")
		}, 8*time.Second, 200*time.Millisecond).Should(ContainSubstring("why=signed-out"), "another replica refuses it within seconds")
		GinkgoWriter.Printf("the other replica refused the copy %v after the sign-out\n", time.Since(signedOutAt))
		Consistently(func() string {
			return withCookie(otherReplica, cookie).get("/console/runs").header.Get("Location")
		}, 4*time.Second, 500*time.Millisecond).Should(ContainSubstring("why=signed-out"), "and goes on refusing it once it finds the list unchanged")
		Eventually(openStream(withCookie(otherReplica, cookie), "/console/runs/live").events, waitFor).Should(Receive(Equal("signout")))

		// A stream opened before the sign-out notices at its next update: make one.
		name := startRun("hello", map[string]string{"name": "signed-out"}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSucceeded))
		Eventually(stream.events, waitFor).Should(Receive(Equal("signout")))

		Expect(stillIn.get("/console/runs").status).To(Equal(http.StatusOK), "another sign-in of the same key goes on")
		var cm corev1.ConfigMap
		Expect(k8sClient.Get(context.Background(), signOutsConfigMap, &cm)).To(Succeed())
		Expect(cm.Data).NotTo(BeEmpty())
		for id, expiry := range cm.Data {
			Expect(id+expiry).NotTo(ContainSubstring(token), "the ConfigMap holds hashes of sessions, not their tokens")
			Expect(id + expiry).NotTo(ContainSubstring(adminKey))
		}
	})

	It("signs out all the same when the sign-out cannot be recorded, and says until when a copy works elsewhere", func() {
		noRights := rest.CopyConfig(restCfg)
		noRights.Impersonate = rest.ImpersonationConfig{UserName: "console-without-rights"}
		refused, err := client.New(noRights, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		replica := extraConsole(console.Deps{Client: refused})
		v := visitorOf(replica)
		token := v.signIn(adminKey)
		cookie := sessionCookie(v)
		before := len(logs.String())

		p := v.post("/console/sign-out", url.Values{"csrf": {token}})
		Expect(p.status).To(Equal(http.StatusSeeOther))
		Expect(p.header.Get("Location")).To(Equal("/console/sign-in?why=signed-out"))
		Expect(p.header.Get("Set-Cookie")).To(ContainSubstring("Max-Age=0"))
		logged := logs.String()[before:]
		Expect(logged).To(ContainSubstring("console_sign_out_not_shared"))
		Expect(logged).To(ContainSubstring("forbidden"))
		Expect(logged).To(ContainSubstring("other replicas accept a copy of its cookie until it expires"))
		Expect(logged).NotTo(ContainSubstring(token))
		Expect(withCookie(replica, cookie).get("/console/runs").header.Get("Location")).To(ContainSubstring("why=signed-out"),
			"the replica that served the sign-out refuses the copy still")
	})
})

// sessionCookie is the visitor's session cookie, as someone who copied it would have it.
func sessionCookie(v *visitor) *http.Cookie {
	GinkgoHelper()
	u, err := url.Parse(v.base + "/console/")
	Expect(err).NotTo(HaveOccurred())
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == console.CookieName {
			return &http.Cookie{Name: c.Name, Value: c.Value, Path: "/console/"}
		}
	}
	Fail("the visitor has no session cookie")
	return nil
}

// withCookie is a visitor of the console at base that carries cookie (and nothing else).
func withCookie(base string, cookie *http.Cookie) *visitor {
	GinkgoHelper()
	v := visitorOf(base)
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/console/")
	Expect(err).NotTo(HaveOccurred())
	v.client.Jar.SetCookies(u, []*http.Cookie{cookie})
	return v
}
