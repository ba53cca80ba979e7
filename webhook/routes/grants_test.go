package routes

import "testing"

func TestGrants(t *testing.T) {
	g, err := ParseGrants(" team-a=team-a-* , ops=github-issues,*=public-*,")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ns, slug string
		want     bool
	}{
		{"team-a", "team-a-deploys", true},
		{"team-a", "team-b-deploys", false},
		{"team-b", "team-a-deploys", false},
		{"ops", "github-issues", true},
		{"ops", "github-issues-2", false},
		{"anyone", "public-status", true},
		{"anyone", "private", false},
	}
	for _, c := range cases {
		if got := g.Allows(c.ns, c.slug); got != c.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", c.ns, c.slug, got, c.want)
		}
	}
	if got := g.String(); got != "team-a=team-a-*,ops=github-issues,*=public-*" {
		t.Errorf("String() = %q", got)
	}
	none, err := ParseGrants("")
	if err != nil || none.Allows("default", "anything") {
		t.Errorf("no grants allow a claim: %v", err)
	}
	for _, bad := range []string{"team-a", "=x", "Team=x", "a=b*c", "a=b/c"} {
		if _, err := ParseGrants(bad); err == nil {
			t.Errorf("ParseGrants(%q) accepted", bad)
		}
	}
}

// FuzzParseGrants: parsing never panics, and what parses renders back to grants that parse to
// the same thing and allow the same claims.
func FuzzParseGrants(f *testing.F) {
	for _, seed := range []string{"team-a=team-a-*", "*=*", "a=b,c=d*", "=", "a", "a=b*c", " x = y ", "ns=slug,,"} {
		f.Add(seed, "team-a", "team-a-x")
	}
	f.Fuzz(func(t *testing.T, flag, ns, slug string) {
		g, err := ParseGrants(flag)
		if err != nil {
			return
		}
		again, err := ParseGrants(g.String())
		if err != nil || again.String() != g.String() || again.Allows(ns, slug) != g.Allows(ns, slug) {
			t.Fatalf("grants %q render as %q, which parses to %q (%v)", flag, g.String(), again.String(), err)
		}
	})
}
