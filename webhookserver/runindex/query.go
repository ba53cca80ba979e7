package runindex

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
)

// DefaultLimit and MaxLimit bound a page.
const (
	// DefaultLimit is a page's size when the query gives none.
	DefaultLimit = 50
	// MaxLimit is the largest page a query may ask for.
	MaxLimit = 500
)

// Query selects a page of runs. Empty fields do not filter.
type Query struct {
	// Namespaces are where to look; a query without namespaces finds nothing (the caller
	// passes the namespaces its user may see).
	Namespaces []string
	// Workflow keeps runs of this workflow.
	Workflow string
	// Phases keeps runs in any of these phases.
	Phases []workflowsv1alpha1.RunPhase
	// Webhook keeps runs started by deliveries to this webhook slug.
	Webhook string
	// Text keeps runs whose name, workflow, phase, step, wait, error reason, revision or
	// workflows.centaur.dev/ labels contain it, in any case.
	Text string
	// After is the Next cursor of the previous page; empty starts with the newest run.
	After string
	// Limit is the page size, DefaultLimit when zero, at most MaxLimit.
	Limit int
}

// Page is one page of runs, newest first.
type Page struct {
	// Runs are the page's runs, copies.
	Runs []Run
	// Next is the cursor of the next (older) page; empty when no older run matches.
	Next string
	// Total is how many runs the query's namespaces hold, before filtering.
	Total int
}

// ErrBadCursor is a cursor that this index did not hand out.
var ErrBadCursor = errors.New("the page cursor is not valid: follow the links of the previous page")

// List returns a page of the runs that match q, newest first. The namespaces are merged into
// one order. A page reads the runs it returns and those its filters skip before it is full,
// plus one more match to know whether an older page exists; it never copies the index.
func (ix *Index) List(q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var after *Run
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return Page{}, err
		}
		after = &c
	}
	match := q.matcher()

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var page Page
	heads := ix.heads(q.Namespaces, after, &page.Total)
	for len(page.Runs) <= limit {
		r := next(heads)
		if r == nil {
			break
		}
		if match(r) {
			page.Runs = append(page.Runs, *r)
		}
	}
	if len(page.Runs) > limit {
		page.Runs = page.Runs[:limit]
		page.Next = encodeCursor(&page.Runs[limit-1])
	}
	return page, nil
}

// head is a position in one namespace's order.
type head struct {
	order []*Run
	i     int
}

// heads positions a head in each of namespaces just after the cursor, and adds up their sizes.
func (ix *Index) heads(namespaces []string, after *Run, total *int) []*head {
	var heads []*head
	seen := map[string]bool{}
	for _, name := range namespaces {
		ns := ix.namespaces[name]
		if ns == nil || seen[name] {
			continue
		}
		seen[name] = true
		*total += len(ns.order)
		h := &head{order: ns.order}
		if after != nil {
			h.i = searchAfter(ns.order, after)
		}
		heads = append(heads, h)
	}
	return heads
}

// searchAfter is the position of the first run of order that comes after c.
func searchAfter(order []*Run, c *Run) int {
	lo, hi := 0, len(order)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if before(c, order[mid]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// next takes the first run across the heads in the index's order, or nil when all are done.
func next(heads []*head) *Run {
	var best *head
	for _, h := range heads {
		if h.i < len(h.order) && (best == nil || before(h.order[h.i], best.order[best.i])) {
			best = h
		}
	}
	if best == nil {
		return nil
	}
	best.i++
	return best.order[best.i-1]
}

// matcher compiles the query's filters.
func (q Query) matcher() func(*Run) bool {
	text := strings.ToLower(strings.TrimSpace(q.Text))
	phases := slices.Clone(q.Phases)
	return func(r *Run) bool {
		switch {
		case q.Workflow != "" && r.Workflow != q.Workflow:
			return false
		case len(phases) > 0 && !slices.Contains(phases, r.Phase):
			return false
		case q.Webhook != "" && r.Webhook() != q.Webhook:
			return false
		case text != "" && !strings.Contains(r.search, text):
			return false
		}
		return true
	}
}

// searchText joins the run's searchable fields in lower case.
func searchText(r *Run) string {
	parts := []string{r.Namespace, r.Name, r.Workflow, string(r.Phase), r.CurrentStep, r.WaitingFor, r.Reason, r.Revision}
	for _, v := range r.Labels {
		parts = append(parts, v)
	}
	return strings.ToLower(strings.Join(parts, "\x00"))
}

// encodeCursor encodes the position of r: its creation time, namespace and name.
func encodeCursor(r *Run) string {
	raw := strconv.FormatInt(r.CreatedAt.UnixNano(), 10) + "/" + r.Namespace + "/" + r.Name
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor decodes a cursor into a Run holding only the fields of the order.
func decodeCursor(s string) (Run, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Run{}, ErrBadCursor
	}
	parts := strings.SplitN(string(raw), "/", 3)
	if len(parts) != 3 || parts[2] == "" {
		return Run{}, ErrBadCursor
	}
	nanos, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return Run{}, fmt.Errorf("%w (%v)", ErrBadCursor, err)
	}
	return Run{CreatedAt: time.Unix(0, nanos).UTC(), Namespace: parts[1], Name: parts[2]}, nil
}
