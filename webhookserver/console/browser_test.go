package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The browser: Debian's Chromium, headless, with the flags this machine needs (without the
// background-networking flags Chromium's connections to Google are refused at start), a fresh
// profile, driven through the DevTools protocol by chromedp. Each spec opens its own browser
// context, so cookies never leak from one spec to another.
var (
	browserCtx    context.Context
	browserCancel context.CancelFunc
	allocCancel   context.CancelFunc
	profileDir    string
	browserSkip   string // why the browser specs are skipped (SKIP_BROWSER=1), or empty
)

// installHint is the one command that makes the browser specs runnable.
const installHint = "sudo apt-get install -y chromium"

// findChromium returns $CHROMIUM, or chromium or chromium-browser from PATH.
func findChromium() string {
	if path := os.Getenv("CHROMIUM"); path != "" {
		return path
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// startBrowser starts Chromium for the suite, or records why the browser specs are skipped.
func startBrowser() {
	path := findChromium()
	if path == "" {
		if os.Getenv("SKIP_BROWSER") == "1" {
			browserSkip = "SKIP_BROWSER=1 and Chromium is not installed: the console's browser specs are skipped"
			fmt.Fprintln(os.Stderr, browserSkip)
			return
		}
		Fail(fmt.Sprintf("Chromium is not installed, so the console's browser specs cannot run. Install it with `%s` (make test does this when it runs as root), set CHROMIUM to a Chromium binary, or set SKIP_BROWSER=1 to skip them.", installHint))
	}
	var err error
	profileDir, err = os.MkdirTemp("", "console-chromium-")
	Expect(err).NotTo(HaveOccurred())
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(profileDir),
		chromedp.WindowSize(1280, 900),
	}
	var allocCtx context.Context
	allocCtx, allocCancel = chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, browserCancel = chromedp.NewContext(allocCtx)
	Expect(chromedp.Do(browserCtx)).To(Succeed(), "start Chromium (%s)", path)
}

// stopBrowser stops Chromium and removes its profile.
func stopBrowser() {
	if browserCancel != nil {
		browserCancel()
		allocCancel()
	}
	if profileDir != "" {
		_ = os.RemoveAll(profileDir)
	}
}

// tab is one spec's page in a browser context of its own. Script errors, refused resources
// (the Content-Security-Policy) and console errors fail the spec when it ends.
type tab struct {
	ctx  context.Context
	base string // the console's address

	mu       sync.Mutex
	problems []string
}

// openTab opens a tab on the suite's console, or skips the spec when the browser specs are
// skipped.
func openTab() *tab {
	GinkgoHelper()
	return openTabAt(baseURL)
}

// openTabAt opens a tab on the console at base.
func openTabAt(base string) *tab {
	GinkgoHelper()
	if browserSkip != "" {
		Skip(browserSkip)
	}
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t := &tab{ctx: ctx, base: base}
	Expect(chromedp.Listen(ctx, t.watch)).To(Succeed())
	_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	Expect(err).NotTo(HaveOccurred())
	Expect(chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900))).To(Succeed())
	DeferCleanup(func() {
		t.mu.Lock()
		problems := t.problems
		t.mu.Unlock()
		cancel()
		Expect(problems).To(BeEmpty(), "the page reported errors")
	})
	return t
}

// watch records the page's errors. A failed resource load (a 401 or 404 the spec asked for)
// is the spec's business, not an error of the page.
func (t *tab) watch(ev any) {
	var problem string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		problem = "script exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			problem += " " + e.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork {
			problem = fmt.Sprintf("%s: %s", e.Entry.Source, e.Entry.Text)
		}
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			problem = "console.error"
		}
	}
	if problem != "" {
		t.mu.Lock()
		t.problems = append(t.problems, problem)
		t.mu.Unlock()
	}
}

// do runs actions, each spec step bounded to 20 s.
func (t *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	Expect(chromedp.Do(ctx, actions...)).To(Succeed())
}

// open navigates to a console path.
func (t *tab) open(path string) {
	GinkgoHelper()
	t.do(chromedp.Navigate(t.base + path))
}

// text is the visible text of the first element sel matches, waiting up to 5 s for it.
func (t *tab) text(sel string) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	Expect(err).NotTo(HaveOccurred(), "read the text of %s", sel)
	return s
}

// value is the value of the form field sel.
func (t *tab) value(sel string) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	Expect(err).NotTo(HaveOccurred(), "read the value of %s", sel)
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *tab, js string) T {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	Expect(err).NotTo(HaveOccurred(), "evaluate %s", js)
	return v
}

// location is the page's URL, without the server's address.
func (t *tab) location() string {
	GinkgoHelper()
	loc, err := chromedp.Run(t.ctx, chromedp.Location())
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimPrefix(loc, t.base)
}

// eventuallyText waits until the text of sel contains want, reading it again and again (the
// page changes by itself, through its live stream).
func (t *tab) eventuallyText(sel, want string) {
	GinkgoHelper()
	Eventually(func() string {
		ctx, cancel := context.WithTimeout(t.ctx, time.Second)
		defer cancel()
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return s
	}, waitFor, 200*time.Millisecond).Should(ContainSubstring(want), "the text of %s", sel)
}

// eventuallyTextAfterReload reloads the page until the text of sel contains want (for pages
// without a live stream).
func (t *tab) eventuallyTextAfterReload(sel, want string) {
	GinkgoHelper()
	Eventually(func() string {
		ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
			return err.Error()
		}
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return s
	}, waitFor, 500*time.Millisecond).Should(ContainSubstring(want), "the text of %s", sel)
}

// signIn signs in through the sign-in form, as a person would, and waits for the runs page.
func (t *tab) signIn(key string) {
	GinkgoHelper()
	t.open("/")
	t.do(
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), key),
		chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS("table.runs")),
	)
	Expect(t.location()).To(HavePrefix("/console/runs"))
}

// cookies are the browser's cookies for the console.
func (t *tab) cookies() []*network.Cookie {
	GinkgoHelper()
	res, err := chromedp.Call(t.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{t.base + "/console/runs"}})
	Expect(err).NotTo(HaveOccurred())
	return res.Cookies
}

// shot saves a screenshot of the whole page as artifacts/console/<name>.png.
func (t *tab) shot(name string) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	Expect(err).NotTo(HaveOccurred())
	dir := artifactsDir()
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	path := filepath.Join(dir, name+".png")
	Expect(os.WriteFile(path, png, 0o644)).To(Succeed())
	AddReportEntry("screenshot "+name, path)
	return path
}
