package deploycheck

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

func TestTheManagerWorksWithThePermissionsConfigDefaultGivesIt(t *testing.T) {
	root, err := testcluster.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	CheckManager(t, Install{
		Name:        "config/default",
		Objects:     render(t, root, "default"),
		ManagerArgs: []string{"--leader-elect", "--metrics-secure"},
		Applied: func(ctx context.Context, t *testing.T, admin client.Client) {
			t.Log("config/quota applies in a tenant's namespace")
			if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}); err != nil {
				t.Fatal(err)
			}
			for _, obj := range render(t, root, "quota") {
				obj.SetNamespace("tenant")
				if err := Apply(ctx, admin, obj, false); err != nil {
					t.Fatalf("apply config/quota's %s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		},
	})
}

// render is Render, for this package's tests.
func render(t *testing.T, root, dir string) []*unstructured.Unstructured {
	t.Helper()
	return Render(t, root, dir)
}
