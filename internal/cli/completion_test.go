package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

// asCentaur, set in the environment, makes this test binary act as the centaur command, so
// that the shell scripts' tests run a real shell against the real CLI without building it.
const asCentaur = "CENTAUR_CLI_TEST_AS_CENTAUR"

func TestMain(m *testing.M) {
	if os.Getenv(asCentaur) == "1" {
		switch filepath.Base(os.Args[0]) {
		case "kubectl_complete-centaur": // as cmd/kubectl_complete-centaur
			os.Exit(cli.Main("kubectl centaur", append([]string{cli.KubectlCompleteCommand}, os.Args[1:]...), os.Stdout, os.Stderr))
		case "kubectl-centaur":
			os.Exit(cli.Main("kubectl centaur", os.Args[1:], os.Stdout, os.Stderr))
		}
		os.Exit(cli.Main("centaur", os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// binDir returns a directory for PATH in which this test binary is each of names.
func binDir(t *testing.T, names ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range names {
		if err := os.Symlink(self, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func TestCompleteOffersWhatMayComeNext(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  []string // candidates, in order
		files bool
	}{
		{words: []string{""}, want: []string{"lint", "run", "test", "replay", "start", "runs", "journal", "events", "schedules", "workflows", "python-path", "completion", "version", "help"}},
		{words: []string{"l"}, want: []string{"lint"}},
		{words: []string{"__c"}, want: nil}, // hidden
		{words: []string{"lint", ""}, files: true},
		{words: []string{"lint", "--f"}, want: []string{"--format"}},
		{words: []string{"lint", "--format", ""}, want: []string{"text", "github"}},
		{words: []string{"lint", "--format", "g"}, want: []string{"github"}},
		{words: []string{"lint", "--format=github", ""}, files: true},
		{words: []string{"run", "--input", ""}, files: true}, // any value: a file may be @file
		{words: []string{"run", "--real-time", ""}, files: true},
		{words: []string{"run", "--journal", "out.json", "wf.star", ""}, files: true},
		{words: []string{"replay", ""}, files: true},
		{words: []string{"replay", "--all"}, want: []string{"--all-namespaces", "--all-running"}},
		{words: []string{"help", "c"}, want: []string{"completion"}},
		{words: []string{"runs", ""}, want: []string{"list", "get", "watch", "cancel"}},
		{words: []string{"runs", "-o", ""}, want: []string{"table", "json", "yaml"}},
		{words: []string{"runs", "-n", "ops", "w"}, want: []string{"watch"}},
		{words: []string{"runs", "get", ""}},
		{words: []string{"schedules", "p"}, want: []string{"pause"}},
		{words: []string{"events", ""}, want: []string{"send"}},
		{words: []string{"completion", ""}, want: []string{"bash", "fish", "zsh"}},
		{words: []string{"completion", "bash", ""}},
		{words: []string{"version", ""}},
		{words: []string{"nope", ""}},
	} {
		t.Run(strings.Join(tc.words, "_"), func(t *testing.T) {
			r := centaur(t, append([]string{"__complete"}, tc.words...)...)
			lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			marker, candidates := lines[len(lines)-1], lines[:len(lines)-1]
			wantMarker := ":nofiles"
			if tc.files {
				wantMarker = ":files"
			}
			if r.exit != cli.ExitOK || marker != wantMarker || !slices.Equal(candidates, tc.want) && !(len(candidates) == 0 && len(tc.want) == 0) {
				t.Errorf("__complete %q = exit %d, %q then %s; want %q then %s", tc.words, r.exit, candidates, marker, tc.want, wantMarker)
			}
		})
	}
}

func TestCompletionRefusesAnUnknownShell(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "tcsh"}, {"completion", "bash", "zsh"}} {
		if r := centaur(t, args...); r.exit != cli.ExitUsage || r.stdout != "" {
			t.Errorf("centaur %q = exit %d, stdout %q; want exit 2 and nothing on stdout", args, r.exit, r.stdout)
		}
	}
}

// TestBashCompletionCompletesInARealShell loads `centaur completion bash` into bash and asks
// its function for completions, with this test binary on PATH as centaur.
func TestBashCompletionCompletesInARealShell(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to test the bash completion script: %v", err)
	}
	bin := binDir(t, "centaur")
	work := t.TempDir()
	for _, name := range []string{"nightly.star", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(work, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		line []string // the words typed, the last one being completed
		want []string
	}{
		{line: []string{"centaur", "li"}, want: []string{"lint"}},
		{line: []string{"centaur", "lint", "--format", ""}, want: []string{"text", "github"}},
		{line: []string{"centaur", "run", "ni"}, want: []string{"nightly.star"}},
		{line: []string{"centaur", "completion", "f"}, want: []string{"fish"}},
	} {
		script := `source <(centaur completion bash)
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_centaur
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, append([]string{"-c", script, "bash"}, tc.line...)...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), asCentaur+"=1")
		out, err := cmd.CombinedOutput()
		got := strings.Fields(string(out))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("bash completion of %q = %q (%v); want %q", tc.line, got, err, tc.want)
		}
	}
}

func TestCompletionScriptsCallTheHiddenCommand(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := centaur(t, "completion", shell)
		if r.exit != cli.ExitOK || !strings.Contains(r.stdout, "centaur __complete") {
			t.Errorf("centaur completion %s = exit %d:\n%s", shell, r.exit, r.stdout)
		}
	}
	if r := centaur(t, "help"); strings.Contains(r.stdout, "__complete") {
		t.Errorf("help lists the hidden command:\n%s", r.stdout)
	}
}

// TestKubectlCompletesThePlugin asks the real kubectl to complete `kubectl centaur ...`, with
// kubectl-centaur and kubectl_complete-centaur on PATH as a user installs them.
func TestKubectlCompletesThePlugin(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is needed to test the plugin's completion: %v", err)
	}
	bin := binDir(t, "kubectl-centaur", "kubectl_complete-centaur")
	for _, tc := range []struct {
		words     []string // after kubectl centaur, the last one being completed
		want      []string
		directive string
	}{
		{words: []string{"ru"}, want: []string{"run", "runs"}, directive: ":4"},
		{words: []string{"schedules", ""}, want: []string{"list", "trigger", "pause", "resume"}, directive: ":4"},
		{words: []string{"lint", ""}, directive: ":0"},
	} {
		cmd := exec.Command(kubectl, append([]string{"__complete", "centaur"}, tc.words...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), asCentaur+"=1")
		out, err := cmd.Output()
		lines := strings.Fields(string(out))
		if err != nil || len(lines) == 0 || lines[len(lines)-1] != tc.directive || !slices.Equal(lines[:len(lines)-1], tc.want) && len(tc.want) > 0 {
			t.Errorf("kubectl __complete centaur %q = %q (%v); want %q then %s", tc.words, lines, err, tc.want, tc.directive)
		}
	}
}
