package deploycheck

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// The directories of WORKFLOW_DIRS that the install guide (docs/install.md) names.
const (
	imageDir     = "/app/workflows"
	overlayDir   = "/app/overlay/org/workflows"
	configMapDir = "/app/overlay/configmap/workflows"
)

// An overlay image (built FROM the operator's image, its files copied to
// /app/overlay/org/workflows) only works if the Deployment lists that directory and mounts
// nothing over it: a volume there would hide the image's files. config/default and both
// samples are checked, and the overlay image sample's Dockerfile copies to that directory.
func TestNothingHidesTheOverlayImagesWorkflowFiles(t *testing.T) {
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"default", "samples/overlay", "samples/overlay-configmap"} {
		manager := managerContainer(t, root, dir)
		var dirs []string
		for _, env := range manager.Env {
			if env.Name == "WORKFLOW_DIRS" {
				dirs = strings.Split(env.Value, ":")
			}
		}
		if want := []string{imageDir, overlayDir, configMapDir}; !slices.Equal(dirs, want) {
			t.Errorf("config/%s: WORKFLOW_DIRS=%s; want %s (the image's, the overlay image's, the ConfigMap's)",
				dir, strings.Join(dirs, ":"), strings.Join(want, ":"))
		}
		mounted := false
		for _, m := range manager.VolumeMounts {
			p := filepath.Clean(m.MountPath)
			if p == overlayDir || strings.HasPrefix(overlayDir, p+"/") {
				t.Errorf("config/%s mounts the volume %s at %s, which hides the overlay image's %s", dir, m.Name, m.MountPath, overlayDir)
			}
			if p == configMapDir {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("config/%s mounts nothing at %s, the ConfigMap's directory of WORKFLOW_DIRS", dir, configMapDir)
		}
	}

	base, overlay := managerContainer(t, root, "default").Image, managerContainer(t, root, "samples/overlay").Image
	if overlay == base {
		t.Errorf("config/samples/overlay runs the operator's image %s, not the overlay image", base)
	}
	stages := dockerStages(t, filepath.Join(root, "config", "samples", "overlay", "Dockerfile"))
	if len(stages) != 1 || stages[0].from != "${OPERATOR_IMAGE}" {
		t.Errorf("config/samples/overlay/Dockerfile: want one stage FROM ${OPERATOR_IMAGE}, the operator's image")
	}
	if copies := stages[0].all("COPY"); !slices.Contains(copies, "workflows/ "+overlayDir+"/") {
		t.Errorf("config/samples/overlay/Dockerfile copies %q; want workflows/ to %s/", copies, overlayDir)
	}
	if user := stages[0].last("USER"); user != "" {
		t.Errorf("config/samples/overlay/Dockerfile sets USER %s; the operator's image's non-root user must stay", user)
	}
	if matches, _ := filepath.Glob(filepath.Join(root, "config", "samples", "overlay", "workflows", "*.py")); len(matches) == 0 {
		t.Error("config/samples/overlay/workflows holds no workflow file to copy")
	}
}
