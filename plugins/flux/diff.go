package flux

import (
	"context"
	"fmt"

	"github.com/fluxcd/cli-utils/pkg/object"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/kustomize"
	"github.com/fluxcd/pkg/ssa"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/prdiff"
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
func (r *run) diffAt(ctx context.Context, t target, pr github.PullRequest, sha string) (prdiff.Report, error) {
	rep := prdiff.Report{Tool: "Flux", Kind: "Kustomization", Name: t.ks.Namespace + "/" + t.ks.Name, Repo: t.repo, PR: pr, SHA: sha, Path: r.cmd.path}
	if rep.Path == "" {
		rep.Path = t.ks.Spec.Path
	}
	if rep.Path == "" {
		rep.Path = "./"
	}
	if !prdiff.Inside(rep.Path) {
		return rep, fmt.Errorf("--path %q: must be a path inside the repository", rep.Path)
	}
	ksObj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t.ks)
	if err != nil {
		//lint:ignore ST1005 a Kind is written as Kubernetes names it
		return rep, fmt.Errorf("Kustomization %s: %w", t.ks.Name, err)
	}
	ksu := unstructured.Unstructured{Object: ksObj}
	objects, err := r.e.prs.Build(ctx, t.repo, pr, sha, func(ctx context.Context, root string) ([]byte, error) {
		dirPath, err := prdiff.SecurePath(root, rep.Path, "--path")
		if err != nil {
			return nil, err
		}
		return r.kustomizeBuild(ctx, t, ksu, root, dirPath)
	})
	if err != nil {
		return rep, err
	}
	man := ssa.NewResourceManager(t.kc, nil, ssa.Owner{Field: fieldManager, Group: fluxGroup})
	man.SetOwnerLabels(objects, t.ks.Name, t.ks.Namespace)
	cmp := prdiff.Comparer{Client: t.kc, Owner: ssa.Owner{Field: fieldManager, Group: fluxGroup},
		Exclusions: map[string]string{reconcileAnnotation: disabledValue}, Secrets: r.secrets}
	changes, built, err := cmp.Compare(ctx, objects)
	if err != nil {
		return rep, err
	}
	rep.Changes = changes
	deleted, err := r.pruned(ctx, t, cmp, built)
	rep.Changes = append(rep.Changes, deleted...)
	prdiff.Sort(rep.Changes)
	return rep, err
}

// kustomizeBuild generates the kustomization overlay (the Kustomization's
// patches, images, namespace, prefixes) at dirPath, builds it with
// everything confined to root and no remote bases, and applies post-build
// substitutions, recording every value that came from a Secret.
func (r *run) kustomizeBuild(ctx context.Context, t target, ksu unstructured.Unstructured, root, dirPath string) ([]byte, error) {
	gen := kustomize.NewGenerator(root, ksu)
	if _, err := gen.WriteFile(dirPath); err != nil {
		return nil, fmt.Errorf("build %s: %w", prdiff.Rel(root, dirPath), err)
	}
	resMap, err := kustomize.SecureBuild(root, dirPath, false)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", prdiff.Rel(root, dirPath), prdiff.CleanBuildError(err, root))
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
	return y, nil
}

// pruned lists the inventory's objects that the build no longer has, and
// that still exist and are not protected from pruning.
func (r *run) pruned(ctx context.Context, t target, cmp prdiff.Comparer, built map[string]bool) ([]prdiff.Change, error) {
	if !t.ks.Spec.Prune || t.ks.Status.Inventory == nil {
		return nil, nil
	}
	var refs []prdiff.Ref
	for _, ref := range t.ks.Status.Inventory.Entries {
		meta, err := object.ParseObjMetadata(ref.ID)
		if err != nil {
			//lint:ignore ST1005 a Kind is written as Kubernetes names it
			return nil, fmt.Errorf("Kustomization inventory entry %q: %w", ref.ID, err)
		}
		refs = append(refs, prdiff.Ref{GVK: meta.GroupKind.WithVersion(ref.Version), Namespace: meta.Namespace, Name: meta.Name})
	}
	return cmp.Deleted(ctx, refs, built, func(live *unstructured.Unstructured) bool {
		return live.GetAnnotations()[pruneAnnotation] == disabledValue || live.GetLabels()[pruneAnnotation] == disabledValue
	})
}
