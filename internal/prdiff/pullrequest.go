package prdiff

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/github"
	"github.com/kubechat/kubechat/internal/redact"
)

// Target is the object a pull request diff is about, as an executor
// resolved it for one command.
type Target struct {
	// Repo is where the object's source lives.
	Repo github.Repo
	// Kind and Name name the object in replies and comments.
	Kind, Name string
	// Ref is the command's --github-ref: a pull request number, URL or branch.
	Ref string
	// SHA is the command's --sha: the commit that was diffed, if any.
	SHA string
	// Diff diffs the object at commit sha of pr.
	Diff func(ctx context.Context, pr github.PullRequest, sha string) (Report, error)
	// Args are the follow-up command's arguments after its verb, for pull
	// request number at commit sha (none: the head, when diffing again).
	Args func(number int, sha string) []string
	// Verbs are the executor's words for the follow-ups.
	DiffVerb, CommentVerb, ApproveVerb []string
	// Marker identifies the object's comment on a pull request.
	Marker string
	// Thread is the address of the chat thread the command runs in, if
	// its platform has one: a report's commit status links there.
	Thread string
}

// Diff runs a diff command: the object at the pull request's head (or
// --sha), with buttons to post it, approve at that commit and open the
// pull request.
func (d *Differ) Diff(ctx context.Context, t Target) (executor.Result, error) {
	pr, err := d.gh.FindPullRequest(ctx, t.Repo, t.Ref)
	if err != nil {
		return executor.Result{}, err
	}
	sha := t.SHA
	if sha == "" {
		sha = pr.HeadSHA
	}
	rep, err := t.Diff(ctx, pr, sha)
	if err != nil {
		return executor.Result{Errors: "Error: " + err.Error() + "\n", ExitCode: 1}, nil
	}
	res := executor.Result{Output: rep.Text()}
	if rep.Forbidden() {
		res.Errors = "Some objects were skipped: the identity may not dry-run them (see above).\n"
	}
	// The diffed commit travels in the buttons' signed commands, so a
	// click acts on what was shown, whatever was pushed since.
	args := t.Args(pr.Number, sha)
	res.Buttons = []executor.Button{
		{Label: "Post diff to PR", Args: slices.Concat(t.CommentVerb, args)},
		{Label: "Approve PR", Args: slices.Concat(t.ApproveVerb, args), Primary: true},
		{Label: "View PR", URL: pr.HTMLURL},
	}
	return res, nil
}

// Comment runs a comment command: the diff again at --sha, posted to the
// pull request, replacing this object's earlier comment. The comment is
// masked with secrets before it leaves.
func (d *Differ) Comment(ctx context.Context, t Target, cluster, user string, secrets *redact.Set) (executor.Result, error) {
	pr, err := d.gh.FindPullRequest(ctx, t.Repo, t.Ref)
	if err != nil {
		return executor.Result{}, err
	}
	rep, err := t.Diff(ctx, pr, t.SHA)
	if err != nil {
		return executor.Result{Errors: "Error: " + err.Error() + "\n", ExitCode: 1}, nil
	}
	body := secrets.Redact(rep.Markdown(cluster, user))
	url, err := d.gh.UpsertComment(ctx, t.Repo, pr.Number, t.Marker, body)
	if err != nil {
		return executor.Result{}, err
	}
	out := fmt.Sprintf("Posted the diff of %s %s at %s to %s#%d: %s\n", t.Kind, t.Name, ShortSHA(t.SHA), t.Repo, pr.Number, url)
	return executor.Result{Output: out, Buttons: []executor.Button{{Label: "View PR", URL: pr.HTMLURL}}}, nil
}

// Approve runs an approve command: it approves the pull request at --sha,
// and refuses, offering to diff again, if its head moved.
func (d *Differ) Approve(ctx context.Context, t Target, cluster string, caller executor.Caller) (executor.Result, error) {
	number, err := strconv.Atoi(strings.TrimPrefix(t.Ref, "#"))
	if err != nil {
		pr, ferr := d.gh.FindPullRequest(ctx, t.Repo, t.Ref)
		if ferr != nil {
			return executor.Result{}, ferr
		}
		number = pr.Number
	}
	who := caller.UserName
	if who == "" {
		who = caller.UserID
	}
	body := fmt.Sprintf("Approved from chat by %s (%s) through kubechat, after the diff of %s %s on cluster %s at %s.",
		who, caller.Platform, t.Kind, t.Name, cluster, t.SHA)
	pr, err := d.gh.Approve(ctx, t.Repo, number, t.SHA, body)
	if errors.Is(err, github.ErrHeadMoved) {
		out := fmt.Sprintf("Not approved: %s#%d has new commits since the diff (%s). Diff it again and review the new head before approving.\n",
			t.Repo, number, strings.TrimPrefix(err.Error(), github.ErrHeadMoved.Error()+": "))
		return executor.Result{Errors: out, ExitCode: 1, Buttons: []executor.Button{
			{Label: "Diff again", Args: slices.Concat(t.DiffVerb, t.Args(number, "")), Primary: true},
			{Label: "View PR", URL: pr.HTMLURL},
		}}, nil
	}
	if err != nil {
		return executor.Result{}, err
	}
	out := fmt.Sprintf("Approved %s#%d at %s.\n", t.Repo, number, ShortSHA(t.SHA))
	return executor.Result{Output: out, Buttons: []executor.Button{{Label: "View PR", URL: pr.HTMLURL}}}, nil
}

// StatusContext names the commit status a report sets.
const StatusContext = "kubechat/diff"

// Report runs a report command, what a pull request's push starts: it
// marks commit --sha pending, diffs the object there, posts the diff to
// the pull request (replacing this object's earlier comment) unless a
// newer commit was pushed meanwhile, and sets the commit status
// kubechat/diff on --sha: success when the object builds and dry-runs,
// failure when it does not. A status belongs to its commit, so the one of
// an older push never stands for a newer head. The status links to the
// chat thread the report is posted in (t.Thread), else to the comment, else
// to the pull request. The comment is masked with secrets before it leaves.
func (d *Differ) Report(ctx context.Context, t Target, cluster string, secrets *redact.Set) (executor.Result, error) {
	pr, err := d.gh.FindPullRequest(ctx, t.Repo, t.Ref)
	if err != nil {
		return executor.Result{}, err
	}
	what := t.Kind + " " + t.Name
	if err := d.gh.SetStatus(ctx, t.Repo, t.SHA, StatusContext, github.StatusPending, "Diffing "+what+" on "+cluster, cmp.Or(t.Thread, pr.HTMLURL)); err != nil {
		return executor.Result{}, err
	}
	res := executor.Result{Buttons: []executor.Button{{Label: "View PR", URL: pr.HTMLURL}}}
	state, desc, body := github.StatusSuccess, "", ""
	rep, derr := t.Diff(ctx, pr, t.SHA)
	switch {
	case derr != nil:
		state, desc = github.StatusFailure, what+" does not build: "+derr.Error()
		body = fmt.Sprintf("### %s diff: %s `%s` on cluster `%s`\n\nAt commit %s the diff failed:\n\n```\n%s\n```\n", rep.Tool, t.Kind, t.Name, cluster, t.SHA, derr)
		res.Errors, res.ExitCode = "Error: "+derr.Error()+"\n", 1
	case rep.Forbidden():
		state, desc = github.StatusFailure, what+": some objects could not be dry-run ("+rep.Summary()+")"
		body = rep.Markdown(cluster, "")
		res.Output, res.Errors, res.ExitCode = rep.Text(), "Some objects were skipped: the identity may not dry-run them (see above).\n", 1
	default:
		desc = what + ": " + rep.Summary()
		body = rep.Markdown(cluster, "")
		res.Output = rep.Text()
		res.Buttons = append([]executor.Button{{Label: "Approve PR", Args: slices.Concat(t.ApproveVerb, t.Args(pr.Number, t.SHA)), Primary: true}}, res.Buttons...)
	}
	target := pr.HTMLURL
	now, err := d.gh.PullRequest(ctx, t.Repo, pr.Number)
	if err != nil {
		return executor.Result{}, err
	}
	if now.HeadSHA == t.SHA {
		url, err := d.gh.UpsertComment(ctx, t.Repo, pr.Number, t.Marker, secrets.Redact(body))
		if err != nil {
			return executor.Result{}, err
		}
		target = url
		res.Output += fmt.Sprintf("Reported to %s#%d: %s\n", t.Repo, pr.Number, url)
	} else {
		res.Output += fmt.Sprintf("Not posted to %s#%d: its head moved to %s since, and that push gets its own report.\n", t.Repo, pr.Number, ShortSHA(now.HeadSHA))
	}
	if err := d.gh.SetStatus(ctx, t.Repo, t.SHA, StatusContext, state, secrets.Redact(desc), cmp.Or(t.Thread, target)); err != nil {
		return executor.Result{}, err
	}
	res.Output += fmt.Sprintf("Commit status %s on %s: %s\n", StatusContext, ShortSHA(t.SHA), state)
	return res, nil
}
