package chartcheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/internal/deploycheck"
)

// The directories of WORKFLOW_DIRS (docs/install.md "Workflow directories").
const (
	imageDir     = "/app/workflows"
	overlayDir   = "/app/overlay/org/workflows"
	configMapDir = "/app/overlay/configmap/workflows"
	examplesDir  = chartDir + "/examples"
	// serviceMonitorCRD is the pinned copy hack/servicemonitor-crd.sh generates.
	serviceMonitorCRD = "testdata/monitoring.coreos.com_servicemonitors.yaml"
)

// workflowDirModes are the examples of the three ways of giving the manager workflow files,
// each with what its rendered pod must have.
var workflowDirModes = map[string]func(t *testing.T, pod corev1.PodSpec, objs []*unstructured.Unstructured){
	"configmap.yaml": func(t *testing.T, pod corev1.PodSpec, objs []*unstructured.Unstructured) {
		wantDirs(t, pod, imageDir, overlayDir, configMapDir)
		nothingOverTheOverlayImage(t, pod)
		if mountOf(t, container(t, pod, "manager"), configMapDir).Name != "org-workflows" ||
			volume(t, pod, "org-workflows").ConfigMap == nil {
			t.Errorf("the ConfigMap is not mounted at %s", configMapDir)
		}
		for _, obj := range objs {
			if obj.GetKind() == "ConfigMap" && obj.GetName() == "centaur-org-workflows" {
				if data, _, _ := unstructured.NestedStringMap(obj.Object, "data"); data["standup_note.py"] == "" {
					t.Errorf("the ConfigMap holds no standup_note.py: %v", data)
				}
			}
		}
	},
	"overlay-image.yaml": func(t *testing.T, pod corev1.PodSpec, _ []*unstructured.Unstructured) {
		wantDirs(t, pod, imageDir, overlayDir, configMapDir)
		nothingOverTheOverlayImage(t, pod)
		if img := container(t, pod, "manager").Image; img != "registry.example.com/acme/centaur-workflows:1.0.0" {
			t.Errorf("the manager runs %s, not the overlay image", img)
		}
		if len(pod.InitContainers) != 0 {
			t.Errorf("init containers: %v", pod.InitContainers)
		}
	},
	"overlay-init.yaml": func(t *testing.T, pod corev1.PodSpec, _ []*unstructured.Unstructured) {
		wantDirs(t, pod, imageDir, overlayDir, configMapDir)
		copier := initContainer(t, pod, "copy-workflows")
		if copier.Image != "registry.example.com/acme/centaur-workflow-files:1.0.0" ||
			!slices.Equal(copier.Command, []string{"cp", "-R", "/workflows/.", overlayDir + "/"}) {
			t.Errorf("copy-workflows runs %s %v", copier.Image, copier.Command)
		}
		into, read := mountOf(t, copier, overlayDir), mountOf(t, container(t, pod, "manager"), overlayDir)
		if into.Name != read.Name || into.ReadOnly || !read.ReadOnly || volume(t, pod, read.Name).EmptyDir == nil {
			t.Errorf("the init container writes %+v, the manager reads %+v: want one emptyDir, read-only for the manager", into, read)
		}
	},
	"git-sync.yaml": func(t *testing.T, pod corev1.PodSpec, _ []*unstructured.Unstructured) {
		wantDirs(t, pod, imageDir, overlayDir, configMapDir, "/git/current/workflows")
		nothingOverTheOverlayImage(t, pod)
		sidecar, clone := container(t, pod, "git-sync"), initContainer(t, pod, "git-sync-init")
		for _, c := range []corev1.Container{sidecar, clone} {
			if !strings.HasPrefix(c.Image, "registry.k8s.io/git-sync/git-sync:v4.") {
				t.Errorf("%s runs %s, not upstream git-sync v4", c.Name, c.Image)
			}
			for _, arg := range []string{"--repo=https://github.com/acme/centaur-workflows", "--ref=main", "--root=/git", "--link=current"} {
				if !slices.Contains(c.Args, arg) {
					t.Errorf("%s lacks %s: %v", c.Name, arg, c.Args)
				}
			}
			if m := mountOf(t, c, "/git"); m.Name != "git-sync" || m.ReadOnly {
				t.Errorf("%s mounts %+v at /git", c.Name, m)
			}
		}
		if !slices.Contains(sidecar.Args, "--period=60s") || slices.Contains(sidecar.Args, "--one-time") {
			t.Errorf("the sidecar's args %v: want --period=60s, not --one-time", sidecar.Args)
		}
		if !slices.Contains(clone.Args, "--one-time") {
			t.Errorf("the init clone's args %v lack --one-time", clone.Args)
		}
		if m := mountOf(t, container(t, pod, "manager"), "/git"); m.Name != "git-sync" || !m.ReadOnly ||
			volume(t, pod, "git-sync").EmptyDir == nil {
			t.Errorf("the manager mounts %+v at /git: want the git-sync emptyDir, read-only", m)
		}
	},
}

// Each mode's example renders, lints, and has the mode's essentials; every container stays
// non-root on a read-only root file system. The API server's dry run of each is in
// TestTheManagerWorksWithThePermissionsTheChartGivesIt (one API server for all).
func TestEachWorkflowDirectoryModesExample(t *testing.T) {
	helm, root := helmAndRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, examplesDir, "*.yaml"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	for name := range workflowDirModes {
		if !slices.Contains(names, name) {
			t.Errorf("%s/%s is missing", examplesDir, name)
		}
	}
	guide, err := os.ReadFile(filepath.Join(root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		check, ok := workflowDirModes[name]
		if !ok {
			t.Errorf("%s/%s has no check here: add it to workflowDirModes", examplesDir, name)
			continue
		}
		if !strings.Contains(string(guide), "examples/"+name) {
			t.Errorf("docs/install.md does not name examples/%s", name)
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(root, examplesDir, name)
			if out, err := exec.Command(helm, "lint", "--strict", filepath.Join(root, chartDir), "-f", path).CombinedOutput(); err != nil {
				t.Errorf("helm lint -f %s: %v\n%s", name, err, out)
			}
			objs := template(t, helm, root, readFile(t, path))
			pod := podSpec(t, objs)
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("the pod is not runAsNonRoot")
			}
			for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
					sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
					(sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot) {
					t.Errorf("container %s: want non-root, a read-only root file system and no privilege escalation: %+v", c.Name, sc)
				}
			}
			check(t, pod, objs)
		})
	}
}

// The pinned ServiceMonitor CRD is what its Go module generates (hack/servicemonitor-crd.sh
// regenerates it in a scratch module and compares).
func TestThePinnedServiceMonitorCRDIsTheModules(t *testing.T) {
	_, root := helmAndRoot(t)
	if out, err := exec.Command("bash", filepath.Join(root, "hack", "servicemonitor-crd.sh"), "--check").CombinedOutput(); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}

// dryRunModesAndServiceMonitor passes each workflow-directory example, and the chart with the
// ServiceMonitor on, through the API server's dry run, after installing the pinned
// ServiceMonitor CRD.
func dryRunModesAndServiceMonitor(ctx context.Context, t *testing.T, admin client.Client, helm, root string) {
	t.Helper()
	for name := range workflowDirModes {
		t.Logf("the example %s passes the API server's dry run", name)
		dryRun(ctx, t, admin, template(t, helm, root, readFile(t, filepath.Join(root, examplesDir, name))))
	}

	t.Log("with the pinned ServiceMonitor CRD installed, the chart's ServiceMonitor passes the dry run")
	crds, err := deploycheck.Decode([]byte(readFile(t, filepath.Join(root, "internal", "chartcheck", serviceMonitorCRD))))
	if err != nil || len(crds) != 1 {
		t.Fatalf("%s: %d objects, %v", serviceMonitorCRD, len(crds), err)
	}
	if err := deploycheck.Apply(ctx, admin, crds[0], false); err != nil {
		t.Fatal(err)
	}
	objs := template(t, helm, root, "serviceMonitor: {enabled: true, interval: 15s, labels: {release: prometheus}}")
	var monitor *unstructured.Unstructured
	for _, obj := range objs {
		if obj.GetKind() == "ServiceMonitor" {
			monitor = obj
		}
	}
	if monitor == nil {
		t.Fatal("serviceMonitor.enabled renders no ServiceMonitor")
	}
	deadline := time.Now().Add(30 * time.Second)
	for err = deploycheck.Apply(ctx, admin, monitor, true); err != nil && time.Now().Before(deadline); err = deploycheck.Apply(ctx, admin, monitor, true) {
		time.Sleep(200 * time.Millisecond) // until the CRD is established and the client's mapper sees it
	}
	if err != nil {
		t.Fatalf("dry run of the ServiceMonitor: %v", err)
	}
	dryRun(ctx, t, admin, objs)
}

func dryRun(ctx context.Context, t *testing.T, admin client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() == "CustomResourceDefinition" {
			continue // applied already; a dry run of the same would only conflict on ownership
		}
		if err := deploycheck.Apply(ctx, admin, obj, true); err != nil {
			t.Errorf("dry run of %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func podSpec(t *testing.T, objs []*unstructured.Unstructured) corev1.PodSpec {
	t.Helper()
	for _, obj := range objs {
		if obj.GetKind() == "Deployment" {
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
				t.Fatal(err)
			}
			return d.Spec.Template.Spec
		}
	}
	t.Fatal("no Deployment rendered")
	return corev1.PodSpec{}
}

func wantDirs(t *testing.T, pod corev1.PodSpec, want ...string) {
	t.Helper()
	for _, env := range container(t, pod, "manager").Env {
		if env.Name == "WORKFLOW_DIRS" {
			if got := strings.Split(env.Value, ":"); !slices.Equal(got, want) {
				t.Errorf("WORKFLOW_DIRS=%s; want %s", env.Value, strings.Join(want, ":"))
			}
			return
		}
	}
	t.Error("the manager has no WORKFLOW_DIRS")
}

// nothingOverTheOverlayImage fails if the manager mounts anything at or above
// /app/overlay/org/workflows, which would hide an overlay image's files.
func nothingOverTheOverlayImage(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	for _, m := range container(t, pod, "manager").VolumeMounts {
		if p := filepath.Clean(m.MountPath); p == overlayDir || strings.HasPrefix(overlayDir, p+"/") {
			t.Errorf("the manager mounts %s at %s, hiding the overlay image's %s", m.Name, m.MountPath, overlayDir)
		}
	}
}

func container(t *testing.T, pod corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	return named(t, pod.Containers, "container", name)
}

func initContainer(t *testing.T, pod corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	return named(t, pod.InitContainers, "init container", name)
}

func named(t *testing.T, containers []corev1.Container, kind, name string) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(containers, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no %s %s", kind, name)
	}
	return containers[i]
}

func mountOf(t *testing.T, c corev1.Container, path string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m
		}
	}
	t.Errorf("%s mounts nothing at %s", c.Name, path)
	return corev1.VolumeMount{}
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		t.Fatalf("no volume %s", name)
	}
	return pod.Volumes[i]
}
