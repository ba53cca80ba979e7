package routes

import (
	"fmt"
	"path"
	"strings"
)

// Grants say which namespaces may claim which slugs: the operator's --webhook-slug-grants.
// Slugs are global paths of one API server, so in a cluster shared by teams an editor of one
// namespace must not be able to take another team's route; a WebhookEndpoint or a
// WorkflowDefinition's webhook claims its slug only where a grant allows it. Routes that
// workflows of the manager declare (Go and WORKFLOW_DIRS files) need no grant and cannot be
// taken by anyone.
type Grants []Grant

// Grant lets the namespaces that match Namespace claim the slugs that match Slug. Both are a
// name, a prefix ending in "*" ("team-a-*"), or "*" for any.
type Grant struct {
	Namespace string
	Slug      string
}

// ParseGrants parses "namespace=slug,namespace=slug" (see Grant). Empty means no grant: only
// the manager's own workflows serve webhooks.
func ParseGrants(s string) (Grants, error) {
	var out Grants
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ns, slug, ok := strings.Cut(item, "=")
		if !ok || !validPattern(ns) || !validPattern(slug) {
			return nil, fmt.Errorf("%q: want namespace=slug, each a name, a prefix ending in * or *, for example team-a=team-a-* or *=*", item)
		}
		out = append(out, Grant{Namespace: ns, Slug: slug})
	}
	return out, nil
}

// validPattern accepts names and prefixes of lower-case letters, digits and dashes.
func validPattern(p string) bool {
	body := strings.TrimSuffix(p, "*")
	if strings.Contains(body, "*") {
		return false
	}
	for _, r := range body {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return p != ""
}

// Allows reports whether a claim of slug from namespace is granted.
func (g Grants) Allows(namespace, slug string) bool {
	for _, grant := range g {
		if match(grant.Namespace, namespace) && match(grant.Slug, slug) {
			return true
		}
	}
	return false
}

// match matches a name against a pattern of Grant.
func match(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// String renders the grants as the flag does.
func (g Grants) String() string {
	parts := make([]string, len(g))
	for i, grant := range g {
		parts[i] = grant.Namespace + "=" + grant.Slug
	}
	return strings.Join(parts, ",")
}

// NotGrantedMessage says, for the status of a claim that is not granted, what the operator
// must add.
func NotGrantedMessage(namespace, slug string) string {
	return fmt.Sprintf("the operator has not granted slug %q to namespace %s: slugs are paths shared by the whole cluster, "+
		"so a namespace claims only the slugs the manager's --webhook-slug-grants allows it (ask for %s=%s, or a prefix such as %s=%s-*)",
		slug, namespace, namespace, slug, namespace, namespace)
}
