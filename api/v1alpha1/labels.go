package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// LabelValue fits s into a label value (at most 63 characters): as it is when it fits,
// otherwise truncated and kept unique with a hash. Every writer of the operator's labels
// (workflow, parent run, schedule) uses it, so a selector built from a name finds what the
// writers labelled.
func LabelValue(s string) string {
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.Trim(s[:54], "-_.") + "-" + hex.EncodeToString(sum[:])[:8]
}
