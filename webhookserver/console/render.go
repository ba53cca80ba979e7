package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// templateFS holds the pages: layout.html and parts.html are shared, every other file is one
// page that defines "content" (and the regions its live stream re-renders).
//
//go:embed templates/*.html
var templateFS embed.FS

// staticFS holds the stylesheet and the script.
//
//go:embed static/*
var staticFS embed.FS

// pageNames are the pages, one template file each.
var pageNames = []string{"sign-in", "runs", "run", "workflows", "webhooks", "error"}

// pages are the parsed templates, one set per page.
type pages struct {
	byName map[string]*template.Template
}

// parsedPages are the console's templates, parsed once. They are embedded in the binary, so a
// template that does not parse is a bug of the build that every test of this package catches,
// like a regexp.MustCompile of a constant.
var parsedPages = func() *pages {
	p, err := parsePages()
	if err != nil {
		panic(err)
	}
	return p
}()

// parsePages parses the shared templates once and each page on a clone of them.
func parsePages() (*pages, error) {
	base, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("parse the console's layout: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := base.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone the console's layout: %w", err)
		}
		if _, err := t.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, fmt.Errorf("parse the console's %s page: %w", name, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// execute renders template name of page into a string.
func (p *pages) execute(page, name string, data any) (string, error) {
	t := p.byName[page]
	if t == nil {
		return "", fmt.Errorf("the console has no page %q", page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("render %s of the %s page: %w", name, page, err)
	}
	return buf.String(), nil
}

// chrome is what every page shows around its content: the title, the navigation, who is
// signed in, the CSRF token its forms carry and a notice.
type chrome struct {
	// Title is the page's title.
	Title string
	// Section is the navigation entry to mark current: runs, workflows or webhooks.
	Section string
	// KeyID and Namespaces say who is signed in; empty on the sign-in page.
	KeyID      string
	Namespaces []string
	// CSRF is the token every form of the page posts back.
	CSRF string
	// Notice is a short message about what just happened.
	Notice string
	// Refresh reloads the page every so many seconds when scripts are off (0: never).
	Refresh int
}

// base gives render the chrome of any page's data.
func (c *chrome) base() *chrome { return c }

// view is a page's data.
type view interface{ base() *chrome }

// render answers with page, filling its chrome from the visit. The page is rendered into a
// buffer first, so that a failure never sends half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, v *visit, status int, page string, data view) {
	ch := data.base()
	if v != nil {
		ch.KeyID, ch.Namespaces, ch.CSRF = v.principal.KeyID, v.principal.Namespaces, v.session.CSRF
	}
	if ch.Notice == "" {
		ch.Notice = notices[r.URL.Query().Get("notice")]
	}
	html, err := c.pages.execute(page, "layout", data)
	if err != nil {
		c.log.Error(err, "render a console page", "page", page)
		http.Error(w, "internal error; the manager logged the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(html)) // the browser went away; nothing left to tell it
}

// notices are the messages a redirect after a form can ask for (?notice=...); only these
// fixed texts are ever shown, never text from the URL.
var notices = map[string]string{
	"cancel-requested": "Cancel requested: the run stops at its next suspension point or between two steps.",
	"event-sent":       "Event sent: runs waiting for it resume.",
	"started":          "Run started.",
}

// errorPage is the data of the error page.
type errorPage struct {
	chrome
	Status  int
	Message string
}

// templateFuncs format values for people.
var templateFuncs = template.FuncMap{
	"asset":  assetURL,
	"stamp":  stamp,
	"iso":    iso,
	"ago":    ago,
	"dur":    humanDuration,
	"symbol": symbol,
	"lower":  strings.ToLower,
	"join":   strings.Join,
	"runURL": runPageURL,
	"rows":   textRows,
	"deliveries": func(rows []runRow, now time.Time) runsTable {
		return runsTable{Rows: rows, Now: now}
	},
}

// runPageURL is the console page of a run.
func runPageURL(namespace, name string) string {
	return Prefix + "runs/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

// timeOf accepts the time types the views hold; zero when absent.
func timeOf(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case *time.Time:
		if t != nil {
			return *t
		}
	}
	return time.Time{}
}

// stamp is an absolute time for people, in UTC; "—" when absent.
func stamp(v any) string {
	t := timeOf(v)
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// iso is a time for <time datetime>.
func iso(v any) string {
	t := timeOf(v)
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ago says how long before now t was ("12 s ago"), or how far ahead ("in 3 min").
func ago(v any, now time.Time) string {
	t := timeOf(v)
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 0:
		return "in " + humanDuration(-d)
	case d == 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	default:
		return humanDuration(d) + " ago"
	}
}

// wholeSeconds is a duration between two times of whole-second precision, such as a run's
// start and finish.
func wholeSeconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return "< 1 s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	default:
		return humanDuration(d.Round(time.Second))
	}
}

// humanDuration rounds d to what a person reads: "350 ms", "2.4 s", "3 min 12 s", "5 h 3 min",
// "2 d 4 h".
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d == 0:
		return "0 s"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return twoUnits(d, time.Minute, "min", time.Second, "s")
	case d < 48*time.Hour:
		return twoUnits(d, time.Hour, "h", time.Minute, "min")
	default:
		return twoUnits(d, 24*time.Hour, "d", time.Hour, "h")
	}
}

// twoUnits writes d as whole big units and the remaining small units, leaving out a zero
// remainder.
func twoUnits(d, big time.Duration, bigName string, small time.Duration, smallName string) string {
	b, rest := d/big, (d%big)/small
	if rest == 0 {
		return fmt.Sprintf("%d %s", b, bigName)
	}
	return fmt.Sprintf("%d %s %d %s", b, bigName, rest, smallName)
}

// symbol is the sign shown before a phase or state, so that badges read without colour
// (the word follows it; screen readers skip the sign).
func symbol(v any) string {
	switch fmt.Sprint(v) {
	case "Succeeded", "Completed":
		return "✓"
	case "Failed":
		return "✗"
	case "Cancelled":
		return "⊘"
	case "Running":
		return "▶"
	case "Sleeping":
		return "☾"
	case "Waiting":
		return "◷"
	case "Retrying":
		return "↻"
	default:
		return "○"
	}
}

// textRows is how many rows a textarea needs for text: its lines, from 3 to 14.
func textRows(text string) int {
	return min(max(strings.Count(text, "\n")+2, 3), 14)
}

// prettyJSON indents raw JSON for a <pre>; raw that is not JSON is shown as it is.
func prettyJSON(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// barSteps is how many positions a timeline bar takes across the run's time axis: half a
// per cent each. Bars are placed with classes (x<from> w<width>) of a generated stylesheet,
// because the Content-Security-Policy allows no inline styles, and 1,000 entries render
// faster as plain boxes than as 1,000 inline SVGs.
const barSteps = 200

// timelineCSS is the generated stylesheet of the bars' positions and widths.
func timelineCSS() []byte {
	var b bytes.Buffer
	b.WriteString("/* Generated by the console (render.go): timeline bar positions and widths. */\n")
	for i := 0; i <= barSteps; i++ {
		pct := float64(i) * 100 / barSteps
		fmt.Fprintf(&b, ".x%d{margin-left:%.1f%%}.w%d{width:%.1f%%}\n", i, pct, i, pct)
	}
	return b.Bytes()
}

// asset is a static file the console serves.
type asset struct {
	content []byte
	version string // a short hash of the content, for the URL
	modTime time.Time
}

// assets are the embedded stylesheet and script and the generated timeline stylesheet,
// by name. Their URLs carry a hash of their content, so browsers may cache them for good.
var assets = func() map[string]asset {
	files := map[string][]byte{"timeline.css": timelineCSS()}
	entries, _ := staticFS.ReadDir("static") // embedded: cannot fail
	for _, e := range entries {
		files[e.Name()], _ = staticFS.ReadFile("static/" + e.Name())
	}
	out := map[string]asset{}
	built := time.Now()
	for name, content := range files {
		sum := sha256.Sum256(content)
		out[name] = asset{content: content, version: hex.EncodeToString(sum[:])[:12], modTime: built}
	}
	return out
}()

// assetURL is the versioned URL of a static file.
func assetURL(name string) string {
	return Prefix + "static/" + name + "?v=" + assets[name].version
}

// staticFiles serves the assets; a URL with the current version may be cached for a year.
func staticFiles() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Query().Get("v") == a.version {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		http.ServeContent(w, r, name, a.modTime, bytes.NewReader(a.content))
	})
}
