package textbound_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/centaur-dev/workflow-operator/internal/textbound"
)

func TestCut(t *testing.T) {
	long := strings.Repeat("x", 100)
	note := " … (cut from 100 bytes)"
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{name: "fits", s: "short", n: 10, want: "short"},
		{name: "exactly the limit", s: "12345", n: 5, want: "12345"},
		{name: "cut with a note", s: long, n: 60, want: strings.Repeat("x", 60-len(note)) + note},
		{name: "no room for a note", s: "ééééé", n: 5, want: "éé"},
		{name: "never half a character", s: strings.Repeat("é", 40), n: 59, want: strings.Repeat("é", (59-len(" … (cut from 80 bytes)"))/2) + " … (cut from 80 bytes)"},
		{name: "four-byte characters", s: strings.Repeat("😀", 10), n: 7, want: "😀"},
		{name: "zero", s: "abc", n: 0, want: ""},
		{name: "empty", s: "", n: 0, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := textbound.Cut(tt.s, tt.n)
			if got != tt.want {
				t.Errorf("Cut(%q, %d) = %q; want %q", tt.s, tt.n, got, tt.want)
			}
			if len(got) > max(tt.n, 0) {
				t.Errorf("Cut(…, %d) returned %d bytes", tt.n, len(got))
			}
			if !utf8.ValidString(got) {
				t.Errorf("Cut(…, %d) = %q is not valid UTF-8", tt.n, got)
			}
		})
	}
}

// TestCutHugeMessages is what the controllers rely on: a message of megabytes fits every
// bound they cut to, and the reader learns how long it was.
func TestCutHugeMessages(t *testing.T) {
	huge := strings.Repeat("ü", 5<<20/2) // 5 MiB of two-byte characters
	for _, n := range []int{textbound.EventNote, textbound.LogValue, 32768} {
		got := textbound.Cut(huge, n)
		if len(got) > n || len(got) < n-3-len(" … (cut from 5242880 bytes)") {
			t.Errorf("Cut(5 MiB, %d) returned %d bytes", n, len(got))
		}
		if !utf8.ValidString(got) || !strings.HasSuffix(got, " … (cut from 5242880 bytes)") {
			t.Errorf("Cut(5 MiB, %d) ends with %q; want valid UTF-8 and the note of the original length", n, got[len(got)-40:])
		}
	}
}

func FuzzCut(f *testing.F) {
	f.Add("ééééé", 5)
	f.Add(strings.Repeat("x", 100), 60)
	f.Add("\xff\xfe abc", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = max(n%(len(s)+2), 0)
		got := textbound.Cut(s, n)
		if len(got) > n && len(s) > n {
			t.Fatalf("Cut(%q, %d) = %q: longer than the limit", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Cut(%q, %d) = %q split a character", s, n, got)
		}
		if len(s) <= n && got != s {
			t.Fatalf("Cut(%q, %d) = %q changed text that fits", s, n, got)
		}
	})
}

func TestJSONStaysStructuredUntilItIsTooLong(t *testing.T) {
	if got, ok := textbound.JSON([]byte(`{"a":1}`), 16).(json.RawMessage); !ok || string(got) != `{"a":1}` {
		t.Errorf("a short value: %#v", textbound.JSON([]byte(`{"a":1}`), 16))
	}
	long := []byte(`["` + strings.Repeat("x", 100) + `"]`)
	if got, ok := textbound.JSON(long, 64).(string); !ok || len(got) > 64 || !strings.Contains(got, "cut from 104 bytes") {
		t.Errorf("a long value: %#v", textbound.JSON(long, 64))
	}
}
