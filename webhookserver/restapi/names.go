package restapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Run names. The API server lists objects in name order, so the REST API names the runs it
// creates such that name order is newest first: a fixed-width base-36 count of nanoseconds
// left until the far-future constant math.MaxInt64 (in 2262) comes first, then the workflow
// for people reading `kubectl get wfr`, then a random suffix against collisions within one
// nanosecond. A name stays within 63 characters so it can also serve as a label value (child
// runs carry their parent's name in a label).
const (
	// maxNameLength keeps names usable as label values.
	maxNameLength = 63
	// timeWidth is the width of the time part: base 36 of up to math.MaxInt64 takes 13 digits.
	timeWidth = 13
	// randomWidth is the length of the random suffix.
	randomWidth = 5
	// idempotencyHashWidth is how many base-32 characters of the idempotency hash a name keeps
	// (100 bits).
	idempotencyHashWidth = 20
)

// nameAlphabet is what the random suffix draws from: valid in names, labels and DNS.
const nameAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

var invalidSlugChars = regexp.MustCompile(`[^a-z0-9]+`)

// lowerBase32 encodes hashes into name characters (a-z and 2-7) without padding.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRunName returns a new, unique name for a run of workflow created at now, such that names of
// later runs sort before names of earlier ones: "<time>-<workflow>-<random>", for example
// "1ix2dbl8ckzwq-hello-k3x9q". Other writers of runs (webhooks, for example) may use it too, so
// that their runs list newest first as well.
func NewRunName(workflow string, now time.Time) string {
	left := uint64(math.MaxInt64 - now.UnixNano())
	timePart := strconv.FormatUint(left, 36)
	if pad := timeWidth - len(timePart); pad > 0 {
		timePart = strings.Repeat("0", pad) + timePart
	}
	name := timePart
	if slug := nameSlug(workflow, maxNameLength-timeWidth-randomWidth-2); slug != "" {
		name += "-" + slug
	}
	return name + "-" + randomSuffix(randomWidth)
}

// IdempotentRunName returns the name of the run that a request with an idempotency key starts:
// derived from the workflow and the key alone, so that concurrent requests with the same key
// race to create the same object and the API server lets exactly one win. Such names do not
// carry the creation time, so these runs list in name order after the time-named ones.
func IdempotentRunName(workflow, key string) string {
	sum := sha256.Sum256([]byte(workflow + "\x00" + key))
	hash := lowerBase32.EncodeToString(sum[:])[:idempotencyHashWidth]
	if slug := nameSlug(workflow, maxNameLength-idempotencyHashWidth-1); slug != "" {
		return slug + "-" + hash
	}
	return "run-" + hash
}

// nameSlug turns a workflow name into at most max characters of [a-z0-9-], neither starting
// nor ending with a dash.
func nameSlug(workflow string, max int) string {
	slug := strings.Trim(invalidSlugChars.ReplaceAllString(strings.ToLower(workflow), "-"), "-")
	if len(slug) > max {
		slug = strings.TrimRight(slug[:max], "-")
	}
	return slug
}

// randomSuffix returns n random characters of nameAlphabet.
func randomSuffix(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails on supported platforms
	for i, b := range buf {
		buf[i] = nameAlphabet[int(b)%len(nameAlphabet)]
	}
	return string(buf)
}
