package prdiff

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/redact"
)

// Change is one object's outcome in a diff.
type Change struct {
	// Action is created, configured, deleted, unchanged or skipped.
	Action string
	// Object is "Kind/namespace/name".
	Object string
	// Diff is a unified diff (cluster → pull request) of a changed object.
	Diff string
	// Reason says why an object was skipped.
	Reason string
}

// Actions of a Change.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionDeleted    = "deleted"
	ActionUnchanged  = "unchanged"
	ActionSkipped    = "skipped"
)

// Comparer dry-runs built objects as their controller would apply them.
type Comparer struct {
	// Client acts as the caller.
	Client client.Client
	// Owner is the controller's field manager.
	Owner ssa.Owner
	// Exclusions skip objects that carry one of these annotations (Flux's
	// reconcile: disabled), as Skipped.
	Exclusions map[string]string
	// Secrets records the values of built and deleted Secrets, for masking.
	Secrets *redact.Set
}

// Compare dry-runs every object (namespaces and CRDs first, as they are
// applied) and returns each one's change, and the ids of the built
// objects (object.ObjMetadata strings), for finding deletions.
func (c Comparer) Compare(ctx context.Context, objects []*unstructured.Unstructured) ([]Change, map[string]bool, error) {
	man := ssa.NewResourceManager(c.Client, nil, c.Owner)
	sort.Sort(ssa.SortableUnstructureds(objects))
	for _, o := range objects {
		if ssautil.IsSecret(o) {
			MaskSecret(c.Secrets, o)
		}
	}
	var changes []Change
	built := map[string]bool{}
	// newNamespaces are created by this build: a dry-run of an object in
	// one finds no namespace, and the object is new with it.
	newNamespaces := map[string]bool{}
	for _, o := range objects {
		id := ssautil.FmtUnstructured(o)
		built[object.UnstructuredToObjMetadata(o).String()] = true
		entry, live, merged, err := man.Diff(ctx, o, ssa.DiffOptions{Exclusions: c.Exclusions})
		switch {
		case err != nil && apierrors.IsForbidden(err):
			changes = append(changes, Change{Action: ActionSkipped, Object: id, Reason: forbiddenReason(err)})
			continue
		case err != nil && apierrors.IsNotFound(err) && newNamespaces[o.GetNamespace()]:
			changes = append(changes, Change{Action: ActionCreated, Object: id, Diff: unified(id, nil, o)})
			continue
		case err != nil:
			return changes, built, fmt.Errorf("dry-run %s: %w", id, err)
		}
		ch := Change{Action: string(entry.Action), Object: id}
		switch entry.Action {
		case ssa.CreatedAction:
			ch.Action, ch.Diff = ActionCreated, unified(id, nil, o)
			if ssautil.IsNamespace(o) {
				newNamespaces[o.GetName()] = true
			}
		case ssa.ConfiguredAction:
			ch.Action, ch.Diff = ActionConfigured, unified(id, live, merged)
		case ssa.SkippedAction:
			ch.Action, ch.Reason = ActionSkipped, "excluded by its annotations"
			for k, v := range c.Exclusions {
				ch.Reason = "annotated " + k + ": " + v
			}
		default:
			ch.Action = ActionUnchanged
		}
		changes = append(changes, ch)
	}
	return changes, built, nil
}

// Ref names a live object the build may no longer hold.
type Ref struct {
	GVK             schema.GroupVersionKind
	Namespace, Name string
}

// Deleted lists the objects of refs that the build no longer has (built,
// from Compare) and that still exist, except those keep spares (objects
// protected from pruning). Objects the caller may not read are skipped.
func (c Comparer) Deleted(ctx context.Context, refs []Ref, built map[string]bool, keep func(*unstructured.Unstructured) bool) ([]Change, error) {
	var out []Change
	for _, ref := range refs {
		meta := object.ObjMetadata{Namespace: ref.Namespace, Name: ref.Name, GroupKind: ref.GVK.GroupKind()}
		if built[meta.String()] {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(ref.GVK)
		id := fmt.Sprintf("%s/%s", ref.GVK.Kind, ref.Name)
		if ref.Namespace != "" {
			id = fmt.Sprintf("%s/%s/%s", ref.GVK.Kind, ref.Namespace, ref.Name)
		}
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, live); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				continue
			case apierrors.IsForbidden(err):
				out = append(out, Change{Action: ActionSkipped, Object: id, Reason: forbiddenReason(err)})
				continue
			}
			return out, fmt.Errorf("get %s: %w", id, err)
		}
		if keep != nil && keep(live) {
			continue
		}
		if ssautil.IsSecret(live) {
			MaskSecret(c.Secrets, live)
		}
		out = append(out, Change{Action: ActionDeleted, Object: id, Diff: unified(id, live, nil)})
	}
	return out, nil
}

// Sort orders changes by object, as reports list them.
func Sort(changes []Change) {
	slices.SortStableFunc(changes, func(a, b Change) int { return strings.Compare(a.Object, b.Object) })
}

// MaskSecret records a Secret's values in secrets, so that they are
// masked wherever they show up.
func MaskSecret(secrets *redact.Set, o *unstructured.Unstructured) {
	data, _, _ := unstructured.NestedStringMap(o.Object, "data")
	for _, v := range data {
		secrets.AddBase64(v)
	}
	sdata, _, _ := unstructured.NestedStringMap(o.Object, "stringData")
	for _, v := range sdata {
		secrets.Add(v)
	}
}

func forbiddenReason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return "forbidden: " + status.Status().Message
	}
	return err.Error()
}

// unified diffs the YAML of two versions of an object; nil is absent.
func unified(id string, from, to *unstructured.Unstructured) string {
	d := difflib.UnifiedDiff{
		A: difflib.SplitLines(objectYAML(from)), B: difflib.SplitLines(objectYAML(to)),
		FromFile: id + " (cluster)", ToFile: id + " (pull request)", Context: 3,
	}
	text, err := difflib.GetUnifiedDiffString(d)
	if err != nil {
		return err.Error()
	}
	return text
}

// objectYAML renders o without the fields the server maintains, which
// would only add noise to a diff.
func objectYAML(o *unstructured.Unstructured) string {
	if o == nil {
		return ""
	}
	c := o.DeepCopy()
	for _, f := range []string{"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(c.Object, "status")
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", "deployment.kubernetes.io/revision")
	if len(c.GetAnnotations()) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	}
	y, err := yaml.Marshal(c.Object)
	if err != nil {
		return err.Error()
	}
	return string(y)
}
