package testcluster

import "testing"

// TestListenersOf reads the listeners from the last occurrence of each flag, in every form Go's
// flag package takes, on loopback, and leaves out a listener that is off.
func TestListenersOf(t *testing.T) {
	args := []string{
		"--dev", "--api-bind-address=127.0.0.1:8088", "-api-bind-address", ":9000",
		"--health-probe-bind-address=0.0.0.0:8081", "--metrics-bind-address=0", "--other=x",
	}
	want := Listeners{Probes: "http://127.0.0.1:8081", API: "http://127.0.0.1:9000"}
	if got := ListenersOf(args); got != want {
		t.Errorf("ListenersOf() = %+v, want %+v", got, want)
	}
	if got := ListenersOf([]string{"--api-bind-address=127.0.0.1:0"}); got != (Listeners{}) {
		t.Errorf("with every listener off or on port 0: %+v, want none", got)
	}
}

// TestLocalURL turns listen addresses into loopback URLs.
func TestLocalURL(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1:8081": "http://127.0.0.1:8081",
		":8081":          "http://127.0.0.1:8081",
		"0.0.0.0:8081":   "http://127.0.0.1:8081",
		"[::]:8081":      "http://127.0.0.1:8081",
		"[::1]:8081":     "http://[::1]:8081",
		"0":              "",
		"":               "",
	}
	for addr, want := range cases {
		if got := localURL(addr); got != want {
			t.Errorf("localURL(%q) = %q, want %q", addr, got, want)
		}
	}
}
