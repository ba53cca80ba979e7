package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	workflowsv1alpha1 "github.com/centaur-dev/workflow-operator/api/v1alpha1"
	"github.com/centaur-dev/workflow-operator/catalog"
	"github.com/centaur-dev/workflow-operator/durable/engine"
	"github.com/centaur-dev/workflow-operator/workflowfile"
)

// managedByLabel and managedBy mark the ControllerRevisions the manager stores.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "centaur-workflows"
)

// indexRunRevision indexes unfinished runs by "namespace/revision" of the workflow file they
// replay, so that the revision collector keeps what a run still needs.
const indexRunRevision = "status.workflowRevision"

// RevisionStore keeps workflow file revisions as ControllerRevisions, Kubernetes' kind for
// immutable snapshots: one per revision, named after it, in the operator's namespace for
// WORKFLOW_DIRS files and in a definition's own namespace for WorkflowDefinitions.
type RevisionStore struct {
	// Client creates and deletes revisions.
	Client client.Client
	// Reader reads them past the cache (the manager does not watch ControllerRevisions).
	Reader client.Reader
}

// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;create;delete

// NewWorkflowCatalog returns the catalog over registry that stores revisions as
// ControllerRevisions through mgr's clients.
func NewWorkflowCatalog(mgr ctrl.Manager, registry *engine.Registry, opts catalog.Options) *catalog.Catalog {
	opts.Store = &RevisionStore{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
	return catalog.New(registry, opts)
}

// Save creates the revision, or accepts the one already stored when it holds the same bundle.
func (s *RevisionStore) Save(ctx context.Context, namespace, workflow, rev string, b workflowfile.Bundle) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode revision %s: %w", rev, err)
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: rev, Namespace: namespace, Labels: map[string]string{
			workflowsv1alpha1.LabelRevisionOf: workflowsv1alpha1.LabelValue(workflow),
			managedByLabel:                    managedBy,
		}},
		Data:     runtime.RawExtension{Raw: data},
		Revision: 1,
	}
	err = s.Client.Create(ctx, cr)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	stored, err := s.Load(ctx, namespace, rev)
	if err != nil {
		return err
	}
	if storedData, _ := json.Marshal(stored); !bytes.Equal(storedData, data) {
		return fmt.Errorf("the ControllerRevision %s/%s holds other code than revision %s: delete it so the manager can store the right one", namespace, rev, rev)
	}
	return nil
}

// Load returns the bundle stored as rev in namespace.
func (s *RevisionStore) Load(ctx context.Context, namespace, rev string) (workflowfile.Bundle, error) {
	var cr appsv1.ControllerRevision
	if err := s.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: rev}, &cr); err != nil {
		if apierrors.IsNotFound(err) {
			return workflowfile.Bundle{}, fmt.Errorf("ControllerRevision %s/%s: %w", namespace, rev, catalog.ErrRevisionNotFound)
		}
		return workflowfile.Bundle{}, err
	}
	if cr.Labels[workflowsv1alpha1.LabelRevisionOf] == "" {
		return workflowfile.Bundle{}, fmt.Errorf("ControllerRevision %s/%s is not a workflow revision: %w", namespace, rev, catalog.ErrRevisionNotFound)
	}
	var b workflowfile.Bundle
	if err := json.Unmarshal(cr.Data.Raw, &b); err != nil {
		return workflowfile.Bundle{}, fmt.Errorf("decode ControllerRevision %s/%s: %w", namespace, rev, err)
	}
	return b, nil
}

// DefaultRevisionGCInterval is how often unused revisions are looked for.
const DefaultRevisionGCInterval = 10 * time.Minute

// RevisionCollector deletes the stored revisions no unfinished run replays and no current
// file or definition has. A revision is deleted only after two passes in a row found it
// unused, so a run that stored its revision just before a pass (and whose status the cache
// has not seen yet) keeps it. It runs on the leader.
type RevisionCollector struct {
	// Client deletes ControllerRevisions.
	Client client.Client
	// Runs lists every run, indexed by revision (the manager's cache, or under sharding the
	// view of every run); nil means Client.
	Runs client.Reader
	// Reader lists ControllerRevisions past the cache (the manager does not watch them).
	Reader client.Reader
	// Catalog knows the current revisions.
	Catalog *catalog.Catalog
	// Interval is the time between passes.
	Interval time.Duration

	unused map[string]bool // "namespace/name" found unused by the previous pass
}

// Start runs a pass at once and then every Interval until ctx ends. A pass only deletes what
// the pass before it found unused too, so the first pass deletes nothing.
func (c *RevisionCollector) Start(ctx context.Context) error {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := c.Collect(ctx); err != nil {
			log.FromContext(ctx).Error(err, "collect unused workflow revisions")
		}
	}, c.Interval)
	return nil
}

// Collect makes one pass: it deletes the revisions found unused by this and the previous pass.
func (c *RevisionCollector) Collect(ctx context.Context) error {
	var list appsv1.ControllerRevisionList
	if err := c.Reader.List(ctx, &list, client.HasLabels{workflowsv1alpha1.LabelRevisionOf}); err != nil {
		return fmt.Errorf("list workflow revisions: %w", err)
	}
	unused := map[string]bool{}
	for i := range list.Items {
		cr := &list.Items[i]
		key := cr.Namespace + "/" + cr.Name
		if !isWorkflowRevision(cr) {
			continue
		}
		used, err := c.used(ctx, cr)
		if err != nil {
			return err
		}
		if used {
			continue
		}
		if !c.unused[key] {
			unused[key] = true
			continue
		}
		err = c.Client.Delete(ctx, cr, client.Preconditions{UID: &cr.UID})
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete unused revision %s: %w", key, err)
		}
		c.Catalog.Forget(cr.Namespace, cr.Name)
		log.FromContext(ctx).Info("workflow_revision_deleted", "namespace", cr.Namespace, "revision", cr.Name)
	}
	c.unused = unused
	return nil
}

// revisionName matches the names RevisionStore gives revisions: a DNS label, "-" and 12 hex
// digits of the bundle's digest (workflowfile.RevisionName).
var revisionName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[0-9a-f]{12}$`)

// isWorkflowRevision reports whether cr is one RevisionStore wrote: labelled by the manager,
// named as a revision, owned by no controller (a StatefulSet's or DaemonSet's revisions are),
// and holding a workflow bundle. The label alone is anyone's to write in their namespace, and
// the manager may delete ControllerRevisions everywhere, so the collector never deletes what
// only carries the label.
func isWorkflowRevision(cr *appsv1.ControllerRevision) bool {
	if cr.Labels[managedByLabel] != managedBy || !revisionName.MatchString(cr.Name) || len(cr.OwnerReferences) > 0 {
		return false
	}
	var b workflowfile.Bundle
	dec := json.NewDecoder(bytes.NewReader(cr.Data.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return false
	}
	_, hasEntry := b.Files[b.Entry]
	return b.Entry != "" && hasEntry
}

// used reports whether a revision is current or an unfinished run replays it (the index keys
// runs of WORKFLOW_DIRS revisions by the operator's namespace too, see runRevisionIndex).
func (c *RevisionCollector) used(ctx context.Context, cr *appsv1.ControllerRevision) (bool, error) {
	if c.Catalog.Current(cr.Name) {
		return true, nil
	}
	var runs workflowsv1alpha1.WorkflowRunList
	reader := c.Runs
	if reader == nil {
		reader = c.Client
	}
	if err := reader.List(ctx, &runs, client.MatchingFields{indexRunRevision: cr.Namespace + "/" + cr.Name}, client.Limit(1)); err != nil {
		return false, fmt.Errorf("list runs of revision %s: %w", cr.Name, err)
	}
	return len(runs.Items) > 0, nil
}

// NeedLeaderElection reports true: one collector is enough.
func (c *RevisionCollector) NeedLeaderElection() bool { return true }

// runRevisionIndex keys an unfinished run by the places its revision may be stored: its own
// namespace (a definition's revision) and the operator's (a WORKFLOW_DIRS file's).
func runRevisionIndex(operatorNamespace string) client.IndexerFunc {
	return func(o client.Object) []string {
		run := o.(*workflowsv1alpha1.WorkflowRun)
		rev := run.Status.WorkflowRevision
		if rev == "" || run.Status.Phase.IsFinal() {
			return nil
		}
		keys := []string{run.Namespace + "/" + rev}
		if operatorNamespace != "" && operatorNamespace != run.Namespace {
			keys = append(keys, operatorNamespace+"/"+rev)
		}
		return keys
	}
}
