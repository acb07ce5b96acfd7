package argocd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/argocd"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/prdiff"
)

// The field manager, annotations and tracking Argo CD applies with.
const (
	fieldManager       = "argocd-controller"
	trackingAnnotation = "argocd.argoproj.io/tracking-id"
	syncOptions        = "argocd.argoproj.io/sync-options"
)

// diff runs "app diff". With --github-ref, the Application's source at
// the pull request's head against the cluster, with the buttons of a pull
// request diff; without, its source at the revision the application
// controller last compared (the desired state) against the cluster,
// after the status's own account of what is out of sync.
func (r *run) diff(ctx context.Context) (executor.Result, error) {
	a, err := r.load(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	if r.cmd.ref != "" {
		t, err := r.target(a)
		if err != nil {
			return executor.Result{}, err
		}
		return r.e.prs.Diff(ctx, t)
	}
	res := executor.Result{Output: statusDiff(a), Buttons: r.appButtons(a)}
	rev := a.Status.Sync.Revision
	if a.MultiSource() || !prdiff.IsSHA(rev) {
		return res, nil
	}
	repo, err := github.ParseRepoURL(str(a.Spec.Source, "repoURL"))
	if err != nil {
		return res, nil
	}
	rep, err := r.diffAt(ctx, a, repo, github.PullRequest{CloneURL: str(a.Spec.Source, "repoURL"), HeadRef: a.TargetRevision()}, rev)
	if err != nil {
		res.Errors, res.ExitCode = "Error: "+err.Error()+"\n", 1
		return res, nil
	}
	res.Output += "\n" + rep.Text()
	return res, nil
}

// build renders a's source at commit sha and readies the objects as the
// application controller applies them: into the destination namespace,
// with Argo CD's tracking annotation. kc acts as the caller.
func (r *run) build(ctx context.Context, a *argocd.Application, repo github.Repo, pr github.PullRequest, sha string) ([]*unstructured.Unstructured, client.Client, error) {
	objects, err := r.e.prs.Build(ctx, repo, pr, sha, func(ctx context.Context, root string) ([]byte, error) {
		return r.render(ctx, a, root)
	})
	if err != nil {
		return nil, nil, err
	}
	kc, err := client.New(r.cfg, client.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the cluster: %w", err)
	}
	appName := a.Name
	if a.Namespace != r.e.s.Namespace {
		appName = a.Namespace + "_" + a.Name
	}
	for _, o := range objects {
		if o.GetNamespace() == "" && a.Spec.Destination.Namespace != "" {
			if namespaced, err := kc.IsObjectNamespaced(o); err != nil || namespaced {
				o.SetNamespace(a.Spec.Destination.Namespace)
			}
		}
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		gvk := o.GroupVersionKind()
		ann[trackingAnnotation] = fmt.Sprintf("%s:%s/%s:%s/%s", appName, gvk.Group, gvk.Kind, o.GetNamespace(), o.GetName())
		o.SetAnnotations(ann)
	}
	return objects, kc, nil
}

// target is the pull request diff of Application a, for prdiff.
func (r *run) target(a *argocd.Application) (prdiff.Target, error) {
	if a.MultiSource() {
		return prdiff.Target{}, refuse("application %s has several sources (spec.sources); kubechat diffs single-source applications against a pull request", qualified(a.Namespace, a.Name))
	}
	repo, err := github.ParseRepoURL(str(a.Spec.Source, "repoURL"))
	if err != nil {
		return prdiff.Target{}, refuse("application %s: source.repoURL: %v", qualified(a.Namespace, a.Name), err)
	}
	name := qualified(a.Namespace, a.Name)
	return prdiff.Target{
		Repo: repo, Kind: "Application", Name: name, Ref: r.cmd.ref, SHA: r.cmd.sha, Thread: r.req.Caller.ThreadURL,
		Diff: func(ctx context.Context, pr github.PullRequest, sha string) (prdiff.Report, error) {
			return r.diffAt(ctx, a, repo, pr, sha)
		},
		Args: func(number int, sha string) []string {
			args := []string{a.Name, "-n", a.Namespace, "--github-ref", strconv.Itoa(number)}
			if sha != "" {
				args = append(args, "--sha", sha)
			}
			return args
		},
		DiffVerb: []string{"app", "diff"}, CommentVerb: []string{"app", "comment"}, ApproveVerb: []string{"app", "approve"},
		Marker: fmt.Sprintf("kubechat argocd-diff cluster=%s application=%s", r.e.cluster, name),
	}, nil
}

// comment posts the diff at --sha to the pull request.
func (r *run) comment(ctx context.Context) (executor.Result, error) {
	t, err := r.loadTarget(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	return r.e.prs.Comment(ctx, t, r.e.cluster, r.req.Caller.UserName, r.secrets)
}

// report diffs at --sha, posts the diff to the pull request (unless its
// head moved since) and sets the commit status kubechat/diff on --sha:
// what a github source's push event runs.
func (r *run) report(ctx context.Context) (executor.Result, error) {
	t, err := r.loadTarget(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	return r.e.prs.Report(ctx, t, r.e.cluster, r.secrets)
}

// approve approves the pull request at --sha, unless its head moved.
func (r *run) approve(ctx context.Context) (executor.Result, error) {
	t, err := r.loadTarget(ctx)
	if err != nil {
		return executor.Result{}, err
	}
	return r.e.prs.Approve(ctx, t, r.e.cluster, r.req.Caller)
}

// loadTarget reads the command's Application as the caller and makes it
// a pull request diff's target.
func (r *run) loadTarget(ctx context.Context) (prdiff.Target, error) {
	a, err := r.load(ctx)
	if err != nil {
		return prdiff.Target{}, err
	}
	return r.target(a)
}

// diffAt renders a's source at commit sha (of pr) and dry-runs it
// against the cluster as the caller, as the application controller would
// apply it: into the destination namespace, with Argo CD's tracking
// annotation, under its field manager; what a's status tracks and the
// render no longer has is deleted (pruned on sync), unless it says
// Prune=false.
func (r *run) diffAt(ctx context.Context, a *argocd.Application, repo github.Repo, pr github.PullRequest, sha string) (prdiff.Report, error) {
	rep := prdiff.Report{Tool: "Argo CD", Kind: "Application", Name: qualified(a.Namespace, a.Name), Repo: repo, PR: pr, SHA: sha,
		Path: firstNonEmpty(str(a.Spec.Source, "path"), ".")}
	if a.MultiSource() {
		return rep, refuse("application %s has several sources (spec.sources); kubechat diffs single-source applications", rep.Name)
	}
	objects, kc, err := r.build(ctx, a, repo, pr, sha)
	if err != nil {
		return rep, err
	}
	cmp := prdiff.Comparer{Client: kc, Owner: ssa.Owner{Field: fieldManager, Group: argocd.Group}, Secrets: r.secrets}
	changes, built, err := cmp.Compare(ctx, objects)
	if err != nil {
		return rep, err
	}
	var refs []prdiff.Ref
	for _, res := range a.Status.Resources {
		refs = append(refs, prdiff.Ref{GVK: schema.GroupVersionKind{Group: res.Group, Version: res.Version, Kind: res.Kind}, Namespace: res.Namespace, Name: res.Name})
	}
	deleted, err := cmp.Deleted(ctx, refs, built, func(live *unstructured.Unstructured) bool {
		return strings.Contains(live.GetAnnotations()[syncOptions], "Prune=false")
	})
	rep.Changes = append(changes, deleted...)
	prdiff.Sort(rep.Changes)
	return rep, err
}

// statusDiff lists the resources the Application's status records as out
// of sync or to be pruned, as the application controller last compared.
func statusDiff(a *argocd.Application) string {
	var b strings.Builder
	rev := firstNonEmpty(a.Status.Sync.Revision, strings.Join(a.Status.Sync.Revisions, ","))
	fmt.Fprintf(&b, "Application %s is %s with %s (%s), as the application controller last compared it.\n",
		qualified(a.Namespace, a.Name), orNone(a.Status.Sync.Status), a.TargetRevision(), short(rev))
	n := 0
	for _, res := range a.Status.Resources {
		switch {
		case res.RequiresPruning:
			fmt.Fprintf(&b, "- %s: to be pruned\n", res.String())
		case res.Status == argocd.OutOfSync && res.HealthStatus() == argocd.Missing:
			fmt.Fprintf(&b, "- %s: missing\n", res.String())
		case res.Status == argocd.OutOfSync:
			fmt.Fprintf(&b, "- %s: out of sync\n", res.String())
		default:
			continue
		}
		n++
	}
	if n == 0 {
		b.WriteString("No resource is out of sync.\n")
	}
	return b.String()
}
