package github

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/event"
	"github.com/kubechat/kubechat/internal/github"
)

// target is a GitOps object whose source is a pull request's repository:
// a Flux Kustomization or an Argo CD Application.
type target struct {
	obj event.Object
	uid string
	// dirs are its paths in the repository, cleaned ("" is the root).
	dirs []string
}

// touched is the first of t's paths that holds one of files, if any.
func (t target) touched(files []string) (string, bool) {
	for _, dir := range t.dirs {
		if slices.ContainsFunc(files, func(f string) bool { return touches(dir, f) }) {
			return dir, true
		}
	}
	return "", false
}

// targets lists the Kustomizations and Applications whose source is
// repo, Kustomizations first, each sorted by namespace and name. A kind
// whose API the cluster does not serve (Flux or Argo CD not installed)
// has none.
func (s *Source) targets(ctx context.Context, repo github.Repo) ([]target, error) {
	ks, err := s.kustomizations(ctx, repo)
	if err != nil {
		return nil, err
	}
	apps, err := s.applications(ctx, repo)
	if err != nil {
		return nil, err
	}
	return append(ks, apps...), nil
}

// notInstalled reports whether err says the cluster does not serve the
// listed kind: its API group is unknown, or its CRD went away since the
// client learnt of it.
func notInstalled(err error) bool {
	return meta.IsNoMatchError(err) || apierrors.IsNotFound(err)
}

// ofRepo reports whether Git URL u is repo's, in any of its forms
// (https with or without .git, ssh, scp-like).
func ofRepo(u string, repo github.Repo) bool {
	r, err := github.ParseRepoURL(u)
	return err == nil && strings.EqualFold(r.String(), repo.String())
}

// kustomizations lists the Kustomizations whose source is a GitRepository
// of repo.
func (s *Source) kustomizations(ctx context.Context, repo github.Repo) ([]target, error) {
	var srcs sourcev1.GitRepositoryList
	if err := s.kube.List(ctx, &srcs); notInstalled(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list GitRepositories: %w", err)
	}
	isRepo := map[string]bool{}
	for _, g := range srcs.Items {
		if ofRepo(g.Spec.URL, repo) {
			isRepo[g.Namespace+"/"+g.Name] = true
		}
	}
	if len(isRepo) == 0 {
		return nil, nil
	}
	var all kustomizev1.KustomizationList
	if err := s.kube.List(ctx, &all); err != nil {
		return nil, fmt.Errorf("list Kustomizations: %w", err)
	}
	var out []target
	for _, ks := range all.Items {
		ref := ks.Spec.SourceRef
		ns := ref.Namespace
		if ns == "" {
			ns = ks.Namespace
		}
		if ref.Kind == sourcev1.GitRepositoryKind && isRepo[ns+"/"+ref.Name] {
			out = append(out, target{
				obj: event.Object{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind, Namespace: ks.Namespace, Name: ks.Name},
				uid: string(ks.UID), dirs: []string{cleanPath(ks.Spec.Path)},
			})
		}
	}
	sortTargets(out)
	return out, nil
}

// applications lists the Argo CD Applications with a source (spec.source,
// or any of spec.sources) in repo, with the paths of those sources. A
// Helm repository's chart (source.chart) is not in the repository, and a
// source without a path that only lends its files to the others
// (source.ref) is not one of its paths.
func (s *Source) applications(ctx context.Context, repo github.Repo) ([]target, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(argocd.Applications.GroupVersion().WithKind("ApplicationList"))
	if err := s.kube.List(ctx, list); notInstalled(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list Argo CD Applications: %w", err)
	}
	var out []target
	for i := range list.Items {
		a, err := argocd.FromUnstructured(&list.Items[i])
		if err != nil {
			s.log.Warn("Argo CD Application not read; skipped", "err", err)
			continue
		}
		t := target{obj: event.Object{APIVersion: argocd.Applications.GroupVersion().String(), Kind: "Application", Namespace: a.Namespace, Name: a.Name}, uid: string(a.UID)}
		for _, src := range append([]map[string]any{a.Spec.Source}, a.Spec.Sources...) {
			url, _ := src["repoURL"].(string)
			p, _ := src["path"].(string)
			chart, _ := src["chart"].(string)
			ref, _ := src["ref"].(string)
			if url == "" || chart != "" || (p == "" && ref != "") || !ofRepo(url, repo) {
				continue
			}
			if dir := cleanPath(p); !slices.Contains(t.dirs, dir) {
				t.dirs = append(t.dirs, dir)
			}
		}
		if len(t.dirs) > 0 {
			out = append(out, t)
		}
	}
	sortTargets(out)
	return out, nil
}

func sortTargets(ts []target) {
	slices.SortFunc(ts, func(a, b target) int {
		return strings.Compare(a.obj.Namespace+"/"+a.obj.Name, b.obj.Namespace+"/"+b.obj.Name)
	})
}

// cleanPath is a source path (a Kustomization's spec.path, an
// Application source's path) relative to the repository's root, "" for
// the root itself.
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	return strings.TrimPrefix(c, "/")
}

// touches reports whether the file at repository path f lies under dir.
func touches(dir, f string) bool {
	return dir == "" || f == dir || strings.HasPrefix(f, dir+"/")
}
