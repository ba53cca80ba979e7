package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// No container engine runs here, so the image is checked statically: its runtime base is a
// digest-pinned distroless Python 3.11, it runs as a non-root user, it carries the files the
// Deployment of config/default points at, and the build context holds them.
func TestTheImageCarriesWhatTheDeploymentUses(t *testing.T) {
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	stages := dockerStages(t, filepath.Join(root, "Dockerfile"))
	runtime := stages[len(stages)-1]

	pinned := regexp.MustCompile(`^gcr\.io/distroless/python3-debian12:nonroot@sha256:[0-9a-f]{64}$`)
	if !pinned.MatchString(runtime.from) {
		t.Errorf("the runtime base is %q; want distroless python3-debian12 (Python 3.11), nonroot, pinned by digest", runtime.from)
	}
	if user := runtime.last("USER"); user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("the image runs as user %q; want a non-root user", user)
	}
	copied := map[string]string{} // destination -> source
	for _, args := range runtime.all("COPY") {
		fields := strings.Fields(args)
		copied[fields[len(fields)-1]] = fields[len(fields)-2]
	}
	for dest, src := range map[string]string{"/manager": "/workspace/manager", "/app/python/api/": "python/api/",
		"/app/python/centaur_worker/": "python/centaur_worker/", "/app/workflows/": "workflows/*.py"} {
		if copied[dest] != src {
			t.Errorf("the image's %s comes from %q; want %q", dest, copied[dest], src)
		}
		if !strings.HasPrefix(src, "/") {
			matches, _ := filepath.Glob(filepath.Join(root, src))
			if len(matches) == 0 {
				t.Errorf("the build context has nothing at %s", src)
			}
		}
	}
	if runtime.last("ENTRYPOINT") != `["/manager"]` {
		t.Errorf("ENTRYPOINT %s", runtime.last("ENTRYPOINT"))
	}
	ignored, _ := os.ReadFile(filepath.Join(root, ".dockerignore"))
	for _, line := range strings.Split(string(ignored), "\n") {
		if p := strings.TrimSpace(line); p == "python" || p == "python/" || p == "workflows" || p == "workflows/" {
			t.Errorf(".dockerignore leaves %s out of the build context", p)
		}
	}

	manager := deploymentContainer(t, root)
	for _, arg := range []string{"--python-package-dir=/app/python"} {
		if !slices.Contains(manager.Args, arg) {
			t.Errorf("the Deployment does not pass %s: %v", arg, manager.Args)
		}
	}
	if len(manager.Command) != 1 || manager.Command[0] != "/manager" {
		t.Errorf("the Deployment runs %v; the image has /manager", manager.Command)
	}
	for _, env := range manager.Env {
		if env.Name == "WORKFLOW_DIRS" && !strings.HasPrefix(env.Value, "/app/workflows:") {
			t.Errorf("WORKFLOW_DIRS=%s; want the image's /app/workflows first", env.Value)
		}
	}
}

// dockerStage is one FROM ... stage of a Dockerfile: its base and its instructions.
type dockerStage struct {
	from         string
	instructions [][2]string // keyword, arguments
}

func (s dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s.instructions {
		if in[0] == keyword {
			out = append(out, in[1])
		}
	}
	return out
}

func (s dockerStage) last(keyword string) string {
	all := s.all(keyword)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1]
}

// dockerStages reads a Dockerfile's stages (comments and line continuations handled).
func dockerStages(t *testing.T, path string) []dockerStage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dockerStage
	var line string
	for _, raw := range strings.Split(string(data), "\n") {
		raw = strings.TrimSpace(raw)
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		if strings.HasSuffix(raw, "\\") {
			line += strings.TrimSuffix(raw, "\\") + " "
			continue
		}
		line += raw
		keyword, args, _ := strings.Cut(line, " ")
		line = ""
		keyword, args = strings.ToUpper(keyword), strings.TrimSpace(args)
		if keyword == "FROM" {
			stages = append(stages, dockerStage{from: strings.Fields(args)[0]})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, [2]string{keyword, args})
		}
	}
	if len(stages) == 0 {
		t.Fatal("the Dockerfile has no stage")
	}
	return stages
}

// deploymentContainer is the manager container of config/default's Deployment.
func deploymentContainer(t *testing.T, root string) corev1.Container {
	t.Helper()
	return managerContainer(t, root, "default")
}

// managerContainer is the manager container of the Deployment that config/<dir> renders.
func managerContainer(t *testing.T, root, dir string) corev1.Container {
	t.Helper()
	return ManagerContainer(t, render(t, root, dir), "config/"+dir)
}
