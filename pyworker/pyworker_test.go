package pyworker

import (
	"bufio"
	"strings"
	"testing"
)

// The same bundle and digest as python/tests/test_digest.py: the manager and the worker must
// name a revision alike, or the worker refuses to import it.
func TestDigestAgreesWithTheWorker(t *testing.T) {
	b := Bundle{Origin: "dir", Entry: "nightly_report.py", Files: map[string]string{
		"nightly_report.py": "WORKFLOW_NAME = \"nightly_report\"\n",
		"_util.py":          "X = '\u00fc'\n",
		"pkg/__init__.py":   "",
		"\u00e9.py":         "x",
	}}
	if got := Digest(b); got != "283f0ff4100c986bf5b06a6e54b4bd33b277c5dcd22713eb1f4420e326d87bb8" {
		t.Fatalf("Digest = %s; python/tests/test_digest.py says 283f0ff4...", got)
	}
}

func TestFramesRoundTrip(t *testing.T) {
	call := 2
	data, err := encodeFrame(&frame{Op: "call_step", S: 7, Call: &call, Attempt: 3})
	if err != nil {
		t.Fatal(err)
	}
	f, err := readFrame(bufio.NewReader(strings.NewReader(string(data))))
	if err != nil {
		t.Fatal(err)
	}
	if f.Op != "call_step" || f.S != 7 || f.Call == nil || *f.Call != 2 || f.Attempt != 3 || f.Branch != nil {
		t.Fatalf("read back %+v", f)
	}
	huge := "\xff\xff\xff\xff"
	if _, err := readFrame(bufio.NewReader(strings.NewReader(huge))); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("a frame over the limit: %v", err)
	}
}

func TestPythonsOlderThanThreeNineAreRefused(t *testing.T) {
	for version, ok := range map[string]bool{"3.9.0": true, "3.11.7": true, "3.13.0rc1": true, "4.0": true, "3.8.10": false, "2.7.18": false, "": false} {
		if err := checkVersion(version); (err == nil) != ok {
			t.Errorf("checkVersion(%q) = %v", version, err)
		}
	}
}

func TestOutputLinesAreBounded(t *testing.T) {
	long := strings.Repeat("x", 3*MaxOutputLine)
	br := bufio.NewReaderSize(strings.NewReader("short\n"+long+"\nlast"), MaxOutputLine)
	for i, want := range []func(string) bool{
		func(s string) bool { return s == "short" },
		func(s string) bool { return len(s) <= MaxOutputLine && strings.HasSuffix(s, "(cut from 12289 bytes)") },
		func(s string) bool { return s == "last" },
	} {
		line, _ := readBoundedLine(br)
		if !want(line) {
			t.Errorf("line %d: %q (%d bytes)", i, line[:min(len(line), 80)], len(line))
		}
	}
}

func TestTheWorkerEnvironmentLeadsWithThePackage(t *testing.T) {
	env := workerEnv([]string{"PATH=/bin", "PYTHONPATH=/site", "PYTHONDONTWRITEBYTECODE=", "HOME=/root"}, "/pkg")
	joined := strings.Join(env, " ")
	for _, want := range []string{"PATH=/bin", "HOME=/root", "PYTHONPATH=/pkg:/site", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} {
		if !strings.Contains(joined, want) {
			t.Errorf("worker environment %v lacks %s", env, want)
		}
	}
	if strings.Count(joined, "PYTHONDONTWRITEBYTECODE") != 1 {
		t.Errorf("worker environment %v", env)
	}
}
