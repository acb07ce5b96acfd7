package flux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/kustomize"
	"github.com/fluxcd/pkg/ssa"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/pmezard/go-difflib/difflib"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubechat/kubechat/internal/github"
)

// The labels, annotation and field manager kustomize-controller uses.
const (
	fluxGroup           = "kustomize.toolkit.fluxcd.io"
	fieldManager        = "kustomize-controller"
	reconcileAnnotation = fluxGroup + "/reconcile"
	pruneAnnotation     = fluxGroup + "/prune"
	disabledValue       = "disabled"
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, kustomizev1.AddToScheme, sourcev1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // the schemes of linked-in API packages: a build defect
		}
	}
	return s
}()

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

// report is a finished diff.
type report struct {
	ks      types.NamespacedName
	repo    github.Repo
	pr      github.PullRequest
	sha     string
	path    string
	changes []Change
}

// target is a Kustomization and where its source lives on GitHub.
type target struct {
	ks   *kustomizev1.Kustomization
	repo github.Repo
	kc   client.Client
}

// resolve reads the Kustomization and its GitRepository as the caller.
func (r *run) resolve(ctx context.Context) (target, error) {
	kc, err := client.New(r.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return target{}, fmt.Errorf("connect to the cluster: %w", err)
	}
	ks := &kustomizev1.Kustomization{}
	key := types.NamespacedName{Namespace: r.cmd.namespace, Name: r.cmd.name}
	if err := kc.Get(ctx, key, ks); err != nil {
		return target{}, fmt.Errorf("get Kustomization %s: %w", key, err)
	}
	ref := ks.Spec.SourceRef
	if ref.Kind != sourcev1.GitRepositoryKind {
		//lint:ignore ST1005 a Kind is written as Kubernetes names it
		return target{}, fmt.Errorf("Kustomization %s: its source is a %s; kubechat diffs GitRepository sources against GitHub pull requests", key, ref.Kind)
	}
	srcKey := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	if srcKey.Namespace == "" {
		srcKey.Namespace = ks.Namespace
	}
	src := &sourcev1.GitRepository{}
	if err := kc.Get(ctx, srcKey, src); err != nil {
		return target{}, fmt.Errorf("get GitRepository %s (the source of Kustomization %s): %w", srcKey, key, err)
	}
	repo, err := github.ParseRepoURL(src.Spec.URL)
	if err != nil {
		return target{}, fmt.Errorf("GitRepository %s: spec.url: %w", srcKey, err)
	}
	return target{ks: ks, repo: repo, kc: kc}, nil
}

// diffAt builds the Kustomization at commit sha of pr and diffs it against
// the cluster.
func (r *run) diffAt(ctx context.Context, t target, pr github.PullRequest, sha string) (report, error) {
	rep := report{ks: types.NamespacedName{Namespace: t.ks.Namespace, Name: t.ks.Name}, repo: t.repo, pr: pr, sha: sha}
	rep.path = r.cmd.path
	if rep.path == "" {
		rep.path = t.ks.Spec.Path
	}
	if rep.path == "" {
		rep.path = "./"
	}
	objects, err := r.build(ctx, t, pr, sha, rep.path)
	if err != nil {
		return rep, err
	}
	rep.changes, err = r.compare(ctx, t, objects)
	return rep, err
}

// build clones pr at sha and builds the Kustomization at path, as
// kustomize-controller would, within the size and time limits.
func (r *run) build(ctx context.Context, t target, pr github.PullRequest, sha, path string) ([]*unstructured.Unstructured, error) {
	if p := filepath.Clean(strings.TrimPrefix(path, "/")); p == ".." || strings.HasPrefix(p, "../") {
		return nil, fmt.Errorf("--path %q: must be a path inside the repository", path)
	}
	cloneURL := pr.CloneURL
	if cloneURL == "" {
		return nil, fmt.Errorf("pull request %s#%d has no head repository (was the fork deleted?)", t.repo, pr.Number)
	}
	dir, err := os.MkdirTemp(r.e.s.WorkDir, "kubechat-flux-")
	if err != nil {
		return nil, fmt.Errorf("temporary checkout: %w", err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "repo")
	bctx, cancel := context.WithTimeout(ctx, r.e.s.BuildTimeout.D())
	defer cancel()
	token := ""
	if r.e.token != nil {
		if token, err = r.e.token(bctx); err != nil {
			return nil, err
		}
	}
	if err := checkout(bctx, cloneURL, sha, root, token, r.e.s.MaxRepoBytes); err != nil {
		if errors.Is(bctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("the clone took longer than %s (settings.buildTimeout)", r.e.s.BuildTimeout.D())
		}
		return nil, err
	}
	dirPath, err := securePath(root, path)
	if err != nil {
		return nil, err
	}
	ksObj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t.ks)
	if err != nil {
		//lint:ignore ST1005 a Kind is written as Kubernetes names it
		return nil, fmt.Errorf("Kustomization %s: %w", t.ks.Name, err)
	}
	ksu := unstructured.Unstructured{Object: ksObj}
	type built struct {
		yaml []byte
		err  error
	}
	done := make(chan built, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- built{err: fmt.Errorf("kustomize build panicked: %v", p)}
			}
		}()
		y, err := r.kustomizeBuild(bctx, t, ksu, root, dirPath)
		done <- built{y, err}
	}()
	var b built
	select {
	case b = <-done:
	case <-bctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("the build took longer than %s (settings.buildTimeout)", r.e.s.BuildTimeout.D())
	}
	if b.err != nil {
		return nil, b.err
	}
	objects, err := ssautil.ReadObjects(bytes.NewReader(b.yaml))
	if err != nil {
		return nil, fmt.Errorf("read the built objects: %w", err)
	}
	return objects, nil
}

// kustomizeBuild generates the kustomization overlay (the Kustomization's
// patches, images, namespace, prefixes) at dirPath, builds it with
// everything confined to root and no remote bases, and applies post-build
// substitutions, recording every value that came from a Secret.
func (r *run) kustomizeBuild(ctx context.Context, t target, ksu unstructured.Unstructured, root, dirPath string) ([]byte, error) {
	gen := kustomize.NewGenerator(root, ksu)
	if _, err := gen.WriteFile(dirPath); err != nil {
		return nil, fmt.Errorf("build %s: %w", rel(root, dirPath), err)
	}
	resMap, err := kustomize.SecureBuild(root, dirPath, false)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", rel(root, dirPath), cleanBuildError(err, root))
	}
	if t.ks.Spec.PostBuild != nil {
		sctx := kustomize.ContextWithSecretVarsCollector(ctx, func(vars map[string]string) {
			for _, v := range vars {
				r.secrets.Add(v)
			}
		})
		for _, res := range resMap.Resources() {
			out, err := kustomize.SubstituteVariables(sctx, t.kc, ksu, res)
			if err != nil {
				return nil, fmt.Errorf("post-build substitution in %s: %w", res.CurId(), err)
			}
			if out != nil {
				if _, err := resMap.Replace(out); err != nil {
					return nil, fmt.Errorf("post-build substitution in %s: %w", res.CurId(), err)
				}
			}
		}
	}
	y, err := resMap.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("render the build: %w", err)
	}
	if int64(len(y)) > r.e.s.MaxManifestBytes {
		return nil, fmt.Errorf("the build is %d bytes, past the limit of %d (settings.maxManifestBytes)", len(y), r.e.s.MaxManifestBytes)
	}
	return y, nil
}

// securePath joins path to root and refuses anything outside root,
// through symbolic links too.
func securePath(root, path string) (string, error) {
	full := filepath.Join(root, filepath.Clean("/"+path))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", fmt.Errorf("--path %q: no such directory in the pull request", path)
	}
	rootReal, _ := filepath.EvalSymlinks(root)
	if r, err := filepath.Rel(rootReal, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", fmt.Errorf("--path %q: leads outside the repository", path)
	}
	return real, nil
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." {
		return "./"
	}
	return "./" + r
}

// cleanBuildError keeps the temporary checkout's location out of an error,
// and says plainly what kustomize's own words for a refusal mean.
func cleanBuildError(err error, root string) error {
	msg := strings.ReplaceAll(err.Error(), root, "<repo>")
	switch {
	case strings.Contains(msg, "fs-security-constraint"):
		return fmt.Errorf("a file or base lies outside the repository, and kubechat builds only inside the pull request's checkout: %s", msg)
	case strings.Contains(msg, "remote") || strings.Contains(msg, "git clone") || strings.Contains(msg, "://"):
		return fmt.Errorf("remote bases are off (kubechat builds only what the pull request holds): %s", msg)
	}
	return errors.New(msg)
}

// compare dry-runs every object as kustomize-controller would apply it and
// lists what the Kustomization's inventory holds that the build no longer
// does (pruned on apply).
func (r *run) compare(ctx context.Context, t target, objects []*unstructured.Unstructured) ([]Change, error) {
	man := ssa.NewResourceManager(t.kc, nil, ssa.Owner{Field: fieldManager, Group: fluxGroup})
	man.SetOwnerLabels(objects, t.ks.Name, t.ks.Namespace)
	// Namespaces and CRDs first, as they are applied.
	sort.Sort(ssa.SortableUnstructureds(objects))
	for _, o := range objects {
		if ssautil.IsSecret(o) {
			r.maskSecret(o)
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
		entry, live, merged, err := man.Diff(ctx, o, ssa.DiffOptions{Exclusions: map[string]string{reconcileAnnotation: disabledValue}})
		switch {
		case err != nil && apierrors.IsForbidden(err):
			changes = append(changes, Change{Action: ActionSkipped, Object: id, Reason: forbiddenReason(err)})
			continue
		case err != nil && apierrors.IsNotFound(err) && newNamespaces[o.GetNamespace()]:
			changes = append(changes, Change{Action: ActionCreated, Object: id, Diff: unified(id, nil, o)})
			continue
		case err != nil:
			return changes, fmt.Errorf("dry-run %s: %w", id, err)
		}
		c := Change{Action: string(entry.Action), Object: id}
		switch entry.Action {
		case ssa.CreatedAction:
			c.Action, c.Diff = ActionCreated, unified(id, nil, o)
			if ssautil.IsNamespace(o) {
				newNamespaces[o.GetName()] = true
			}
		case ssa.ConfiguredAction:
			c.Action, c.Diff = ActionConfigured, unified(id, live, merged)
		case ssa.SkippedAction:
			c.Action, c.Reason = ActionSkipped, "annotated "+reconcileAnnotation+": "+disabledValue
		default:
			c.Action = ActionUnchanged
		}
		changes = append(changes, c)
	}
	deleted, err := r.pruned(ctx, t, built)
	changes = append(changes, deleted...)
	slices.SortStableFunc(changes, func(a, b Change) int { return strings.Compare(a.Object, b.Object) })
	return changes, err
}

// pruned lists the inventory's objects that the build no longer has, and
// that still exist and are not protected from pruning.
func (r *run) pruned(ctx context.Context, t target, built map[string]bool) ([]Change, error) {
	if !t.ks.Spec.Prune || t.ks.Status.Inventory == nil {
		return nil, nil
	}
	var out []Change
	for _, ref := range t.ks.Status.Inventory.Entries {
		if built[ref.ID] {
			continue
		}
		meta, err := object.ParseObjMetadata(ref.ID)
		if err != nil {
			//lint:ignore ST1005 a Kind is written as Kubernetes names it
			return out, fmt.Errorf("Kustomization inventory entry %q: %w", ref.ID, err)
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(meta.GroupKind.WithVersion(ref.Version))
		id := fmt.Sprintf("%s/%s", meta.GroupKind.Kind, meta.Name)
		if meta.Namespace != "" {
			id = fmt.Sprintf("%s/%s/%s", meta.GroupKind.Kind, meta.Namespace, meta.Name)
		}
		if err := t.kc.Get(ctx, client.ObjectKey{Namespace: meta.Namespace, Name: meta.Name}, live); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				continue
			case apierrors.IsForbidden(err):
				out = append(out, Change{Action: ActionSkipped, Object: id, Reason: forbiddenReason(err)})
				continue
			}
			return out, fmt.Errorf("get %s: %w", id, err)
		}
		if live.GetAnnotations()[pruneAnnotation] == disabledValue || live.GetLabels()[pruneAnnotation] == disabledValue {
			continue
		}
		if ssautil.IsSecret(live) {
			r.maskSecret(live)
		}
		out = append(out, Change{Action: ActionDeleted, Object: id, Diff: unified(id, live, nil)})
	}
	return out, nil
}

// maskSecret records a Secret's values, so that they are masked wherever
// they show up.
func (r *run) maskSecret(o *unstructured.Unstructured) {
	data, _, _ := unstructured.NestedStringMap(o.Object, "data")
	for _, v := range data {
		r.secrets.AddBase64(v)
	}
	sdata, _, _ := unstructured.NestedStringMap(o.Object, "stringData")
	for _, v := range sdata {
		r.secrets.Add(v)
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

// shortSHA is how a report names its commit.
func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
