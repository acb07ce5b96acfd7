package flux

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/prdiff"
)

// resolveOrDeny resolves the target; an RBAC refusal becomes a Forbidden
// result rather than an error.
func (r *run) resolveOrDeny(ctx context.Context) (prdiff.Target, *executor.Result, error) {
	t, err := r.resolve(ctx)
	if apierrors.IsForbidden(err) {
		return prdiff.Target{}, &executor.Result{Errors: err.Error(), ExitCode: 1, Forbidden: true}, nil
	}
	if err != nil {
		return prdiff.Target{}, nil, err
	}
	key := t.ks.Namespace + "/" + t.ks.Name
	return prdiff.Target{
		Repo: t.repo, Kind: "Kustomization", Name: key, Ref: r.cmd.ref, SHA: r.cmd.sha, Thread: r.req.Caller.ThreadURL,
		Diff: func(ctx context.Context, pr github.PullRequest, sha string) (prdiff.Report, error) {
			return r.diffAt(ctx, t, pr, sha)
		},
		Args:     r.targetArgs,
		DiffVerb: []string{verbDiff}, CommentVerb: []string{verbComment}, ApproveVerb: []string{verbApprove},
		Marker: fmt.Sprintf("kubechat flux-diff cluster=%s kustomization=%s", r.e.cluster, key),
	}, nil, nil
}

// diff runs "flux diff kustomization".
func (r *run) diff(ctx context.Context) (executor.Result, error) {
	t, denied, err := r.resolveOrDeny(ctx)
	if denied != nil || err != nil {
		return deref(denied), err
	}
	return r.e.prs.Diff(ctx, t)
}

// targetArgs are the arguments that name this diff in a follow-up command.
func (r *run) targetArgs(number int, sha string) []string {
	args := []string{"kustomization", r.cmd.name, "-n", r.cmd.namespace, "--github-ref", strconv.Itoa(number)}
	if r.cmd.path != "" {
		args = append(args, "--path", r.cmd.path)
	}
	if sha != "" {
		args = append(args, "--sha", sha)
	}
	return args
}

// comment runs the diff again at --sha and posts it to the pull request,
// replacing this Kustomization's earlier comment.
func (r *run) comment(ctx context.Context) (executor.Result, error) {
	t, denied, err := r.resolveOrDeny(ctx)
	if denied != nil || err != nil {
		return deref(denied), err
	}
	return r.e.prs.Comment(ctx, t, r.e.cluster, r.req.Caller.UserName, r.secrets)
}

// report diffs at --sha, posts the diff to the pull request and sets the
// kubechat/diff commit status: what a github source's push event runs.
func (r *run) report(ctx context.Context) (executor.Result, error) {
	t, denied, err := r.resolveOrDeny(ctx)
	if denied != nil || err != nil {
		return deref(denied), err
	}
	return r.e.prs.Report(ctx, t, r.e.cluster, r.secrets)
}

// approve approves the pull request at --sha, and refuses if its head moved.
func (r *run) approve(ctx context.Context) (executor.Result, error) {
	t, denied, err := r.resolveOrDeny(ctx)
	if denied != nil || err != nil {
		return deref(denied), err
	}
	return r.e.prs.Approve(ctx, t, r.e.cluster, r.req.Caller)
}

func deref(r *executor.Result) executor.Result {
	if r == nil {
		return executor.Result{}
	}
	return *r
}
