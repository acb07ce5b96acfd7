package prdiff

import (
	"fmt"
	"strings"

	"github.com/kubechat/kubechat/internal/github"
)

// Report is a finished diff.
type Report struct {
	// Tool names the diff in a pull request comment ("Flux", "Argo CD").
	Tool string
	// Kind and Name are the diffed object: "Kustomization", "flux-system/apps".
	Kind, Name string
	Repo       github.Repo
	PR         github.PullRequest
	SHA        string
	// Path is what was built, as the report names it ("./deploy").
	Path    string
	Changes []Change
}

// counts tallies changes by action.
func (rep Report) counts() map[string]int {
	n := map[string]int{}
	for _, c := range rep.Changes {
		n[c.Action]++
	}
	return n
}

// Summary counts the changes by action.
func (rep Report) Summary() string {
	n := rep.counts()
	return fmt.Sprintf("%d created, %d configured, %d deleted, %d unchanged, %d skipped",
		n[ActionCreated], n[ActionConfigured], n[ActionDeleted], n[ActionUnchanged], n[ActionSkipped])
}

// Forbidden reports whether an object was skipped because the caller may
// not dry-run it.
func (rep Report) Forbidden() bool {
	for _, c := range rep.Changes {
		if c.Action == ActionSkipped && strings.HasPrefix(c.Reason, "forbidden") {
			return true
		}
	}
	return false
}

// Text renders the report for chat: a line per object that changes or was
// skipped, then the diffs.
func (rep Report) Text() string {
	against := fmt.Sprintf("%s#%d (%s)", rep.Repo, rep.PR.Number, rep.PR.HeadRef)
	if rep.PR.Number == 0 {
		against = fmt.Sprintf("%s (%s)", rep.Repo, rep.PR.HeadRef) // a commit of the repository, no pull request
	}
	head := fmt.Sprintf("%s %s against %s at %s, path %s\n%s\n\n",
		rep.Kind, rep.Name, against, ShortSHA(rep.SHA), rep.Path, rep.Summary())
	return rep.render(head, func(obj, rest string) string { return "► " + obj + " " + rest + "\n" },
		func(diff string) string { return "\n" + diff })
}

// Markdown renders the report as a pull request comment.
func (rep Report) Markdown(cluster, user string) string {
	head := fmt.Sprintf("### %s diff: %s `%s` on cluster `%s`\n\nAt commit %s, path `%s`: %s.",
		rep.Tool, rep.Kind, rep.Name, cluster, rep.SHA, rep.Path, rep.Summary())
	if user != "" {
		head += fmt.Sprintf(" Posted by %s from chat.", user)
	}
	return rep.render(head+"\n\n", func(obj, rest string) string { return "- `" + obj + "` " + rest + "\n" },
		func(diff string) string { return "\n```diff\n" + diff + "```\n" })
}

// render writes head, a line per object that changes or was skipped, then
// each diff, in the form line and block give.
func (rep Report) render(head string, line func(obj, rest string) string, block func(diff string) string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, c := range rep.Changes {
		switch c.Action {
		case ActionUnchanged:
		case ActionSkipped:
			b.WriteString(line(c.Object, "skipped: "+c.Reason))
		default:
			b.WriteString(line(c.Object, c.Action))
		}
	}
	for _, c := range rep.Changes {
		if c.Diff != "" {
			b.WriteString(block(c.Diff))
		}
	}
	return b.String()
}
