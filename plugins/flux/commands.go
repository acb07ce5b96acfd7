package flux

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github"
)

// resolveOrDeny resolves the target; an RBAC refusal becomes a Forbidden
// result rather than an error.
func (r *run) resolveOrDeny(ctx context.Context) (target, *executor.Result, error) {
	t, err := r.resolve(ctx)
	if apierrors.IsForbidden(err) {
		return t, &executor.Result{Errors: err.Error(), ExitCode: 1, Forbidden: true}, nil
	}
	return t, nil, err
}

// diff runs "flux diff kustomization".
func (r *run) diff(ctx context.Context) (executor.Result, error) {
	t, denied, err := r.resolveOrDeny(ctx)
	if denied != nil || err != nil {
		return deref(denied), err
	}
	pr, err := r.e.gh.FindPullRequest(ctx, t.repo, r.cmd.ref)
	if err != nil {
		return executor.Result{}, err
	}
	sha := r.cmd.sha
	if sha == "" {
		sha = pr.HeadSHA
	}
	rep, err := r.diffAt(ctx, t, pr, sha)
	if err != nil {
		return executor.Result{Errors: "Error: " + err.Error() + "\n", ExitCode: 1}, nil
	}
	res := executor.Result{Output: rep.text()}
	for _, c := range rep.changes {
		if c.Action == ActionSkipped && strings.HasPrefix(c.Reason, "forbidden") {
			res.Errors = "Some objects were skipped: the identity may not dry-run them (see above).\n"
		}
	}
	// The diffed commit travels in the buttons' signed commands, so a
	// click acts on what was shown, whatever was pushed since.
	args := r.targetArgs(pr.Number, sha)
	res.Buttons = []executor.Button{
		{Label: "Post diff to PR", Args: append([]string{verbComment}, args...)},
		{Label: "Approve PR", Args: append([]string{verbApprove}, args...), Primary: true},
		{Label: "View PR", URL: pr.HTMLURL},
	}
	return res, nil
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
	pr, err := r.e.gh.FindPullRequest(ctx, t.repo, r.cmd.ref)
	if err != nil {
		return executor.Result{}, err
	}
	rep, err := r.diffAt(ctx, t, pr, r.cmd.sha)
	if err != nil {
		return executor.Result{Errors: "Error: " + err.Error() + "\n", ExitCode: 1}, nil
	}
	// Masked before it leaves: the comment never carries a Secret value.
	body := r.secrets.Redact(rep.markdown(r.e.cluster, r.req.Caller.UserName))
	url, err := r.e.gh.UpsertComment(ctx, t.repo, pr.Number, r.marker(t), body)
	if err != nil {
		return executor.Result{}, err
	}
	out := fmt.Sprintf("Posted the diff of Kustomization %s/%s at %s to %s#%d: %s\n", t.ks.Namespace, t.ks.Name, shortSHA(r.cmd.sha), t.repo, pr.Number, url)
	return executor.Result{Output: out, Buttons: []executor.Button{{Label: "View PR", URL: pr.HTMLURL}}}, nil
}

// marker identifies this cluster's comment about this Kustomization.
func (r *run) marker(t target) string {
	return fmt.Sprintf("kubechat flux-diff cluster=%s kustomization=%s/%s", r.e.cluster, t.ks.Namespace, t.ks.Name)
}

// approve approves the pull request at --sha, and refuses if its head moved.
func (r *run) approve(ctx context.Context) (executor.Result, error) {
	t, denied, err := r.resolveOrDeny(ctx)
	if denied != nil || err != nil {
		return deref(denied), err
	}
	number, err := strconv.Atoi(strings.TrimPrefix(r.cmd.ref, "#"))
	if err != nil {
		pr, ferr := r.e.gh.FindPullRequest(ctx, t.repo, r.cmd.ref)
		if ferr != nil {
			return executor.Result{}, ferr
		}
		number = pr.Number
	}
	who := r.req.Caller.UserName
	if who == "" {
		who = r.req.Caller.UserID
	}
	body := fmt.Sprintf("Approved from chat by %s (%s) through kubechat, after the diff of Kustomization %s/%s on cluster %s at %s.",
		who, r.req.Caller.Platform, t.ks.Namespace, t.ks.Name, r.e.cluster, r.cmd.sha)
	pr, err := r.e.gh.Approve(ctx, t.repo, number, r.cmd.sha, body)
	if errors.Is(err, github.ErrHeadMoved) {
		out := fmt.Sprintf("Not approved: %s#%d has new commits since the diff (%s). Diff it again and review the new head before approving.\n",
			t.repo, number, strings.TrimPrefix(err.Error(), github.ErrHeadMoved.Error()+": "))
		return executor.Result{Errors: out, ExitCode: 1, Buttons: []executor.Button{
			{Label: "Diff again", Args: append([]string{verbDiff}, r.targetArgs(number, "")...), Primary: true},
			{Label: "View PR", URL: pr.HTMLURL},
		}}, nil
	}
	if err != nil {
		return executor.Result{}, err
	}
	out := fmt.Sprintf("Approved %s#%d at %s.\n", t.repo, number, shortSHA(r.cmd.sha))
	return executor.Result{Output: out, Buttons: []executor.Button{{Label: "View PR", URL: pr.HTMLURL}}}, nil
}

func deref(r *executor.Result) executor.Result {
	if r == nil {
		return executor.Result{}
	}
	return *r
}

// counts tallies changes by action.
func (rep report) counts() map[string]int {
	n := map[string]int{}
	for _, c := range rep.changes {
		n[c.Action]++
	}
	return n
}

func (rep report) summary() string {
	n := rep.counts()
	return fmt.Sprintf("%d created, %d configured, %d deleted, %d unchanged, %d skipped",
		n[ActionCreated], n[ActionConfigured], n[ActionDeleted], n[ActionUnchanged], n[ActionSkipped])
}

// text renders the report for chat: a line per object that changes or was
// skipped, then the diffs.
func (rep report) text() string {
	head := fmt.Sprintf("Kustomization %s against %s#%d (%s) at %s, path %s\n%s\n\n",
		rep.ks, rep.repo, rep.pr.Number, rep.pr.HeadRef, shortSHA(rep.sha), rep.path, rep.summary())
	return rep.render(head, func(obj, rest string) string { return "► " + obj + " " + rest + "\n" },
		func(diff string) string { return "\n" + diff })
}

// markdown renders the report as a pull request comment.
func (rep report) markdown(cluster, user string) string {
	head := fmt.Sprintf("### Flux diff: Kustomization `%s` on cluster `%s`\n\nAt commit %s, path `%s`: %s.",
		rep.ks, cluster, rep.sha, rep.path, rep.summary())
	if user != "" {
		head += fmt.Sprintf(" Posted by %s from chat.", user)
	}
	return rep.render(head+"\n\n", func(obj, rest string) string { return "- `" + obj + "` " + rest + "\n" },
		func(diff string) string { return "\n```diff\n" + diff + "```\n" })
}

// render writes head, a line per object that changes or was skipped, then
// each diff, in the form line and block give.
func (rep report) render(head string, line func(obj, rest string) string, block func(diff string) string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, c := range rep.changes {
		switch c.Action {
		case ActionUnchanged:
		case ActionSkipped:
			b.WriteString(line(c.Object, "skipped: "+c.Reason))
		default:
			b.WriteString(line(c.Object, c.Action))
		}
	}
	for _, c := range rep.changes {
		if c.Diff != "" {
			b.WriteString(block(c.Diff))
		}
	}
	return b.String()
}
