package controllers

import "testing"

func TestDeclaredRunsLiveInTheOperatorsNamespaceUnlessAFlagSays(t *testing.T) {
	for _, c := range []struct{ flag, operator, want string }{
		{"", "centaur-system", "centaur-system"},
		{"hooks", "centaur-system", "hooks"},
		{"", "", declaredNamespaceFallback},
	} {
		if got := declaredNamespace(c.flag, c.operator); got != c.want {
			t.Errorf("declaredNamespace(%q, %q) = %q; want %q", c.flag, c.operator, got, c.want)
		}
	}
}
