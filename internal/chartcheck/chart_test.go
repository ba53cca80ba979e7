// Package chartcheck tests the Helm chart (charts/centaur-workflows) with the real helm, built by
// `make helm` into bin/helm: it lints clean with its schema, the schema refuses wrong types, its
// default rendering is config/default's objects plus the chart-only ones listed here, and the
// manager runs under the chart's permissions as internal/deploycheck runs it under
// config/default's.
package chartcheck

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/internal/deploycheck"
	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

// The release as the README installs it: its names and namespace are config/default's.
const (
	release   = "centaur"
	namespace = "centaur-system"
	chartDir  = "charts/centaur-workflows"
)

// chartOnly are the objects the chart renders with its default values that config/default
// does not have; configDefaultOnly the reverse. Anything else must match.
var (
	chartOnly = []string{
		"PodDisruptionBudget centaur-system/centaur-controller-manager",
		"NetworkPolicy centaur-system/centaur-controller-manager",
		// The hook that creates missing Secrets (secrets_test.go).
		"ServiceAccount centaur-system/centaur-ensure-secrets",
		"Role centaur-system/centaur-ensure-secrets",
		"RoleBinding centaur-system/centaur-ensure-secrets",
		"Job centaur-system/centaur-ensure-secrets",
	}
	configDefaultOnly = []string{
		"Namespace centaur-system", // helm install --create-namespace makes it
	}
)

// everything is a values file that turns on every option, so that each template renders.
const everything = `
fullnameOverride: wf
replicas: 1
image: {repository: registry.example.com/centaur/overlay, digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", pullPolicy: Always}
imagePullSecrets: [{name: registry}]
apiKeys: {secretName: keys}
console: {secretName: console}
secrets: {create: true, backoffLimit: 1, activeDeadlineSeconds: 60, resources: {requests: {cpu: 5m}}}
webhookSecrets:
- {name: github-webhook, env: GITHUB_WEBHOOK_SECRET, secretName: gh}
- {name: stripe, env: STRIPE_WEBHOOK_SECRET, secretName: stripe}
webhookSlugGrants: [team-a=team-a-*, ops=github-issues]
secretNamespaces: [team-a]
agents:
  configMap: ""
  config: |
    agents:
      default: {backend: external}
storage: {maxRunBytes: 20971520, maxNamespaceBytes: -1, maxTotalBytes: 1073741824, maxNamespaceRuns: 0}
definitions: {executionMemory: 134217728, loadMemory: 134217728, compileRate: 0.5, maxParallelBranches: 50}
clusterCIDRs: {pods: [100.96.0.0/11], services: [100.64.0.0/13], nodes: [198.51.100.0/24]}
trustedProxies: [10.0.0.0/8]
workflowFiles: {"standup.py": "WORKFLOW_NAME = 'standup'\n"}
extraArgs: [--python-workers=1]
extraEnv: [{name: TZ, value: UTC}]
extraVolumes: [{name: certs, secret: {secretName: certs}}]
extraVolumeMounts: [{name: certs, mountPath: /etc/certs, readOnly: true}]
podAnnotations: {team: platform}
priorityClassName: system-cluster-critical
networkPolicy: {enabled: true, apiFrom: [{namespaceSelector: {matchLabels: {ingress: "true"}}}], egressCIDRs: [0.0.0.0/0]}
webhookIngress: {enabled: true, className: nginx, host: hooks.example.com, tls: [{hosts: [hooks.example.com], secretName: hooks-tls}]}
consoleIngress: {enabled: true, host: workflows.internal.example.com}
`

func TestTheChartLintsCleanWithItsSchema(t *testing.T) {
	helm, root := helmAndRoot(t)
	for name, values := range map[string]string{"default values": "", "every option on": everything} {
		args := []string{"lint", "--strict", filepath.Join(root, chartDir)}
		if values != "" {
			args = append(args, "-f", valuesFile(t, values))
		}
		if out, err := exec.Command(helm, args...).CombinedOutput(); err != nil {
			t.Errorf("helm lint with %s: %v\n%s", name, err, out)
		}
	}
}

func TestTheSchemaRefusesAWrongValueNamingIt(t *testing.T) {
	helm, root := helmAndRoot(t)
	for _, c := range []struct{ values, field string }{
		{"replicas: three", "replicas"},
		{"storage: {maxRunBytes: 20MiB}", "maxRunBytes"},
		{"definitions: {executionMemory: 256Mi}", "executionMemory"},
		{"webhookSlugGrants: team-a=team-a-*", "webhookSlugGrants"},
		{"secretNamespaces: [1]", "secretNamespaces"},
		{"image: {repository: x, pullPolicy: Sometimes}", "pullPolicy"},
		{"networkPolicy: {enabled: yes-please}", "enabled"},
		{"replica: 2", "replica"}, // a typo is not silently ignored
		{"gitSync: {enabled: true}", "repo"},
		{"gitSync: {period: often}", "period"},
		{"overlayInit: {runAsUser: 0}", "runAsUser"},
		{"secrets: {create: sometimes}", "create"},
		{"overlayInit: {enabled: true, image: {repository: files}}", "tag"},
	} {
		out, err := exec.Command(helm, "template", release, filepath.Join(root, chartDir), "-n", namespace,
			"-f", valuesFile(t, c.values)).CombinedOutput()
		if err == nil {
			t.Errorf("the schema accepted %q", c.values)
			continue
		}
		if msg := string(out); !strings.Contains(msg, "schema") || !strings.Contains(msg, c.field) {
			t.Errorf("%q was refused, but the message does not name the schema and %s:\n%s", c.values, c.field, msg)
		}
	}
}

func TestTheChartsCopiesOfGeneratedFilesAreCurrent(t *testing.T) {
	_, root := helmAndRoot(t)
	for copies, sources := range map[string][]string{
		"files/crds": {"config/crd/bases/*.yaml"},
		"files/rbac": {"config/rbac/role.yaml", "config/rbac/*_editor_role.yaml", "config/rbac/*_viewer_role.yaml"},
	} {
		want := map[string][]byte{}
		for _, pattern := range sources {
			matches, _ := filepath.Glob(filepath.Join(root, pattern))
			for _, m := range matches {
				data, err := os.ReadFile(m)
				if err != nil {
					t.Fatal(err)
				}
				want[filepath.Base(m)] = data
			}
		}
		got := map[string][]byte{}
		matches, _ := filepath.Glob(filepath.Join(root, chartDir, copies, "*.yaml"))
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			got[filepath.Base(m)] = data
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s/%s differs from %v: run `make manifests` (it copies them) and commit the result",
				chartDir, copies, sources)
		}
	}
}

func TestTheChartRendersWhatConfigDefaultDoes(t *testing.T) {
	helm, root := helmAndRoot(t)
	chart := byKey(t, template(t, helm, root, ""))
	kustomized := byKey(t, deploycheck.Render(t, root, "default"))
	for key, obj := range chart {
		if slices.Contains(chartOnly, key) {
			continue
		}
		want, ok := kustomized[key]
		if !ok {
			t.Errorf("the chart renders %s, which config/default does not: list it in chartOnly if it is meant", key)
			continue
		}
		for _, diff := range differences("", normalise(want.Object), normalise(obj.Object)) {
			t.Errorf("%s: %s", key, diff)
		}
	}
	for key := range kustomized {
		if _, ok := chart[key]; !ok && !slices.Contains(configDefaultOnly, key) {
			t.Errorf("config/default renders %s; the chart does not", key)
		}
	}
	for _, key := range chartOnly {
		if _, ok := chart[key]; !ok {
			t.Errorf("the chart no longer renders %s: remove it from chartOnly", key)
		}
	}
}

func TestTheManagerWorksWithThePermissionsTheChartGivesIt(t *testing.T) {
	helm, root := helmAndRoot(t)
	objects := template(t, helm, root, "")
	var args []string
	for _, arg := range deploycheck.ManagerContainer(t, objects, "the chart").Args {
		switch {
		case strings.Contains(arg, "-bind-address="): // the test picks free ports
		case strings.HasPrefix(arg, "--python-package-dir="):
			args = append(args, "--python-package-dir="+filepath.Join(root, "python"))
		default:
			args = append(args, arg)
		}
	}
	deploycheck.CheckManager(t, deploycheck.Install{
		Name: "the chart", Objects: objects, Namespaces: []string{namespace}, ManagerArgs: args,
		Applied: func(ctx context.Context, t *testing.T, admin client.Client) {
			t.Log("the chart with every option on (but the ServiceMonitor, below) passes the API server's dry run")
			if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
				t.Fatal(err)
			}
			hookMayOnlyCreateSecrets(ctx, t, admin)
			dryRun(ctx, t, admin, template(t, helm, root, everything))
			dryRunModesAndServiceMonitor(ctx, t, admin, helm, root)
		},
	})
}

// helmAndRoot finds the module's root and bin/helm, which `make helm` builds and `make test`
// passes as HELM; a missing helm fails the test rather than skip it.
func helmAndRoot(t *testing.T) (string, string) {
	t.Helper()
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(root, "bin", "helm")
	}
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("no helm at %s (HELM): run `make helm`, which builds it from the Go module proxy, "+
			"or `make test`, which builds it and passes HELM: %v", helm, err)
	}
	return helm, root
}

// valuesFile writes values to a file for helm's -f.
func valuesFile(t *testing.T, values string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// template renders the chart as release centaur in centaur-system, with values if not empty.
func template(t *testing.T, helm, root, values string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", release, filepath.Join(root, chartDir), "-n", namespace}
	if values != "" {
		args = append(args, "-f", valuesFile(t, values))
	}
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &strings.Builder{}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, cmd.Stderr)
	}
	objs, err := deploycheck.Decode(out)
	if err != nil {
		t.Fatalf("helm template's output: %v", err)
	}
	return objs
}

// clusterScoped are the cluster-scoped kinds either renders. kustomize gives the admission
// policy's objects a namespace, which the API server ignores: so does the comparison.
var clusterScoped = []string{"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}

// byKey indexes objects by "Kind namespace/name" (or "Kind name" when cluster-scoped).
func byKey(t *testing.T, objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, obj := range objs {
		if slices.Contains(clusterScoped, obj.GetKind()) {
			obj = obj.DeepCopy()
			obj.SetNamespace("")
		}
		key := obj.GetKind() + " " + obj.GetName()
		if obj.GetNamespace() != "" {
			key = obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
		}
		if _, dup := out[key]; dup {
			t.Errorf("rendered twice: %s", key)
		}
		out[key] = obj
	}
	return out
}

// normalise drops what differs between a Helm release and a kustomize build without changing
// what an object does: metadata labels other than RBAC's aggregation labels, Helm's
// resource-policy annotation, the release's instance label in selectors and pod labels, and
// the chart-only topology spread of the pods.
func normalise(in map[string]any) map[string]any {
	obj := runtime.DeepCopyJSON(in)
	if labels, ok, _ := unstructured.NestedStringMap(obj, "metadata", "labels"); ok {
		for k := range labels {
			if !strings.HasPrefix(k, "rbac.authorization.k8s.io/") {
				delete(labels, k)
			}
		}
		setOrDrop(obj, labels, "metadata", "labels")
	}
	if annotations, ok, _ := unstructured.NestedStringMap(obj, "metadata", "annotations"); ok {
		delete(annotations, "helm.sh/resource-policy")
		setOrDrop(obj, annotations, "metadata", "annotations")
	}
	for _, path := range [][]string{{"spec", "selector"}, {"spec", "selector", "matchLabels"}, {"spec", "template", "metadata", "labels"}} {
		if labels, ok, _ := unstructured.NestedStringMap(obj, path...); ok {
			delete(labels, "app.kubernetes.io/instance")
			setOrDrop(obj, labels, path...)
		}
	}
	unstructured.RemoveNestedField(obj, "spec", "template", "spec", "topologySpreadConstraints")
	return obj
}

func setOrDrop(obj map[string]any, m map[string]string, path ...string) {
	if len(m) == 0 {
		unstructured.RemoveNestedField(obj, path...)
		return
	}
	_ = unstructured.SetNestedStringMap(obj, m, path...)
}

// differences lists the paths where got differs from want, with both values.
func differences(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			out = append(out, differences(path+"."+k, w[k], g[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		var out []string
		for i := range w {
			out = append(out, differences(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if reflect.DeepEqual(want, got) {
		return nil
	}
	return []string{fmt.Sprintf("%s: config/default has %v, the chart %v", path, want, got)}
}
