package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/webhookserver/console"
)

// pressKey presses and releases one key without typing its character, as a keyboard
// shortcut is pressed (chromedp.KeyEvent also sends the character, which a real browser
// suppresses when the page handles the key).
func pressKey(key, code string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: key, Code: code}); err != nil {
				return err
			}
		}
		return nil
	})
}

// These specs use the console in Chromium as a person would: they type, click and read what
// the page shows, and the page updates itself through its live streams (no reloads).
var _ = Describe("The console in a browser", Label("browser"), func() {
	It("refuses a wrong key and sets no cookie", func() {
		t := openTab()
		t.open("/")
		Expect(t.location()).To(HavePrefix("/console/sign-in"))
		t.do(
			chromedp.WaitVisible(chromedp.ID("key")),
			chromedp.SendKeys(chromedp.ID("key"), "admin.not-the-key"),
			chromedp.Submit(chromedp.ID("key")),
			chromedp.WaitVisible(chromedp.ID("sign-in-problem")),
		)
		Expect(t.text("#sign-in-problem")).To(ContainSubstring("not valid"))
		Expect(t.location()).To(HavePrefix("/console/sign-in"))
		Expect(t.cookies()).To(BeEmpty())
		t.shot("sign-in-refused")

		t.open("/console/runs")
		Expect(t.location()).To(HavePrefix("/console/sign-in"), "a page without a session sends the browser to sign in")
	})

	It("signs in, keeps the key in a sealed session cookie, and shows a new run without a reload", func() {
		t := openTab()
		t.signIn(adminKey)
		cookies := t.cookies()
		Expect(cookies).To(HaveLen(1))
		Expect(cookies[0].Name).To(Equal(console.CookieName))
		Expect(cookies[0].HTTPOnly).To(BeTrue())
		Expect(cookies[0].Session).To(BeTrue(), "the cookie must last for the browser session only")
		Expect(string(cookies[0].SameSite)).To(Equal("Strict"))
		Expect(cookies[0].Value).NotTo(ContainSubstring(adminKey[6:]), "the key must not be readable in the cookie")
		Expect(t.text("header .who")).To(ContainSubstring("admin"))

		// Mark the document: a reload would lose the mark.
		eval[bool](t, `window.stillTheSamePage = true`)
		t.do(chromedp.WaitVisible(chromedp.CSS("html[data-live-ready]")))
		name := startRun("hello", map[string]string{"name": "live"}, "default")
		t.eventuallyText("#runs", name)
		Expect(eval[bool](t, `window.stillTheSamePage === true`)).To(BeTrue(), "the page reloaded instead of updating itself")
		t.eventuallyText(fmt.Sprintf(`#runs tr:has(a[href$="/%s"])`, name), "Succeeded")
		t.shot("runs")
	})

	It("opens a run from the list and shows its timeline, retries, child run, input and output", func() {
		t := openTab()
		t.signIn(adminKey)
		name := startRun("release", map[string]string{"version": "v1.4.2"}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSucceeded))

		link := fmt.Sprintf(`#runs a[href$="/%s"]`, name)
		t.do(chromedp.WaitVisible(chromedp.CSS(link)), chromedp.Click(chromedp.CSS(link)), chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
		Expect(t.location()).To(Equal(runPath("default", name)))
		Expect(t.text("h1")).To(Equal(name))
		Expect(t.text(".page-head .badge")).To(ContainSubstring("Succeeded"))

		timeline := t.text("ol.timeline")
		for _, step := range []string{"build", "test", "canary", "announce", "publish"} {
			Expect(timeline).To(ContainSubstring(step))
		}
		Expect(t.text("ol.timeline li:first-child")).To(ContainSubstring("3 attempts"), "the retried step shows its attempts")
		Expect(t.text("#h-timeline + p")).To(ContainSubstring("2 retries"))
		Expect(t.text("section:has(#h-children)")).To(ContainSubstring("hello"))
		Expect(t.text("section:has(#h-input)")).To(ContainSubstring(`"version": "v1.4.2"`))
		Expect(t.text("section:has(#h-output)")).To(ContainSubstring(`"digest": "sha256:4f2a9c81d04b"`))
		t.shot("run")
		if os.Getenv("UPDATE_DOCS_SCREENSHOT") == "1" {
			png, err := os.ReadFile(t.shot("run"))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile("../../docs/console-run.png", png, 0o644)).To(Succeed())
		}

		// The child's link leads to the child, whose page links back to its parent.
		t.do(chromedp.Click(chromedp.CSS("section:has(#h-children) a")), chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
		Expect(t.text("dl.facts")).To(ContainSubstring(name))
	})

	It("cancels a sleeping run", func() {
		t := openTab()
		t.signIn(adminKey)
		name := startRun("countdown", map[string]int{"seconds": 3600}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSleeping))
		t.open(runPath("default", name))
		Expect(t.text(".page-head .badge")).To(ContainSubstring("Sleeping"))
		Expect(t.text("dl.facts")).To(ContainSubstring("Wakes"))
		t.do(
			chromedp.Click(chromedp.CSS("details.cancel summary")),
			chromedp.WaitVisible(chromedp.CSS("details.cancel button")),
			chromedp.Click(chromedp.CSS("details.cancel button")),
			chromedp.WaitVisible(chromedp.CSS("p.notice")),
		)
		Expect(t.text("p.notice")).To(ContainSubstring("Cancel requested"))
		t.eventuallyText(".page-head .badge", "Cancelled")
		Expect(t.text("section.run-error")).To(ContainSubstring("Cancelled"))
		Expect(getRun("default", name).Status.Phase).To(Equal(workflowsv1alpha1.PhaseCancelled))
		t.shot("run-cancelled")
	})

	It("sends the awaited event to a waiting run and sees it finish", func() {
		t := openTab()
		t.signIn(adminKey)
		request := unique("req")
		name := startRun("approval", map[string]string{"request_id": request}, "default")
		Eventually(phaseOf("default", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseWaiting))
		t.open(runPath("default", name))
		Expect(t.text("dl.facts")).To(ContainSubstring("event approval.decided/" + request))
		Expect(t.value("form.event-form input[name=event_type]")).To(Equal("approval.decided"))
		Expect(t.value("form.event-form input[name=correlation_id]")).To(Equal(request))
		t.shot("run-waiting")

		// A payload that is not JSON is refused with the reason, and what was typed stays.
		t.do(
			chromedp.SetValue(chromedp.CSS("form.event-form textarea"), `{"decision": approved}`),
			chromedp.Click(chromedp.CSS("form.event-form button")),
			chromedp.WaitVisible(chromedp.CSS("form.event-form p.error")),
		)
		Expect(t.text("form.event-form p.error")).To(ContainSubstring("not valid JSON"))
		Expect(t.value("form.event-form textarea")).To(Equal(`{"decision": approved}`))
		Expect(getRun("default", name).Status.Phase).To(Equal(workflowsv1alpha1.PhaseWaiting))

		t.do(
			chromedp.SetValue(chromedp.CSS("form.event-form textarea"), `{"decision": "approved", "by": "ada"}`),
			chromedp.Click(chromedp.CSS("form.event-form button")),
			chromedp.WaitVisible(chromedp.CSS("p.notice")),
		)
		Expect(t.text("p.notice")).To(ContainSubstring("Event sent"))
		t.eventuallyText(".page-head .badge", "Succeeded")
		t.eventuallyText("section:has(#h-output)", `"decision": "approved"`)
		t.shot("run-event-delivered")
	})

	It("starts a run from the workflows page with the example input", func() {
		t := openTab()
		t.signIn(adminKey)
		t.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/workflows"]`)), chromedp.WaitVisible(chromedp.ID("wf-hello")))
		Expect(t.text("#wf-release")).To(ContainSubstring("retrying a flaky registry"))
		var example map[string]string
		Expect(json.Unmarshal([]byte(t.value("#wf-hello textarea")), &example)).To(Succeed())
		Expect(example).To(Equal(map[string]string{"name": "Ada"}))
		t.shot("workflows")

		t.do(chromedp.Click(chromedp.CSS("#wf-hello button")), chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
		Expect(t.location()).To(MatchRegexp(`^/console/runs/default/[a-z0-9-]+-hello-[a-z0-9]+\?notice=started$`))
		Expect(t.text("p.notice")).To(ContainSubstring("Run started"))
		t.eventuallyText(".page-head .badge", "Succeeded")
		Expect(t.text("section:has(#h-output)")).To(ContainSubstring("Hello, Ada!"))
	})

	It("finds runs with the keyboard: / to search, Tab to a run, Enter to open it", func() {
		t := openTab()
		t.signIn(adminKey)
		name := startRun("hello", map[string]string{"name": "keyboard"}, "team-a")
		Eventually(phaseOf("team-a", name), waitFor, pollAt).Should(Equal(workflowsv1alpha1.PhaseSucceeded))
		t.do(pressKey("/", "Slash"))
		Expect(eval[string](t, `document.activeElement.id`)).To(Equal("f-q"))
		Expect(t.value("#f-q")).To(BeEmpty(), "the shortcut must not type itself")
		t.do(chromedp.KeyEvent(name+kb.Enter), chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`#runs a[href$="/%s"]`, name))))
		Expect(t.location()).To(Equal("/console/runs?q="+name), "empty filters stay out of the URL")
		Expect(eval[int](t, `document.querySelectorAll("#runs tbody tr").length`)).To(Equal(1))

		// Tab from the search box through the form's buttons to the run's link, then Enter.
		t.do(chromedp.Focus(chromedp.ID("f-q")))
		for range 10 {
			if eval[bool](t, `document.activeElement.matches("#runs a")`) {
				break
			}
			t.do(chromedp.KeyEvent(kb.Tab))
		}
		Expect(eval[string](t, `document.activeElement.textContent`)).To(Equal(name))
		t.do(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
		Expect(t.location()).To(Equal(runPath("team-a", name)))
	})

	It("reads in the dark theme too", func() {
		t := openTab()
		t.signIn(adminKey)
		_, err := chromedp.Call(t.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		Expect(err).NotTo(HaveOccurred())
		background := eval[string](t, `getComputedStyle(document.body).backgroundColor`)
		Expect(background).To(Equal("rgb(20, 22, 26)"))
		t.shot("runs-dark")
	})
})
