package github

import (
	"fmt"
	"strings"

	"github.com/kubechat/kubechat/internal/executor"
)

// issue is what an issue says about one object.
type issue struct {
	cluster, target, namespace string
	// alert is the alert's text, when the issue is opened from one.
	alert       string
	caller      executor.Caller
	describe    string
	describeCut bool
	// lines is how many of each container's last lines were asked for.
	lines int
	logs  []logs
}

// logs are one run's log lines of a pod's containers.
type logs struct {
	previous bool
	text     string
	err      string
	cut      bool
}

// render is the issue's title and Markdown body. Every part is already
// masked; the caller masks the whole again.
func (is issue) render() (title, body string) {
	what := fmt.Sprintf("%s in namespace %s", is.target, is.namespace)
	if is.cluster != "" {
		what += " of cluster " + is.cluster
	}
	title = what
	if first, _, _ := strings.Cut(strings.TrimSpace(is.alert), "\n"); first != "" {
		title = first
		if is.cluster != "" {
			title = "[" + is.cluster + "] " + first
		}
	}
	title = cutString(title, 200)
	var b strings.Builder
	b.WriteString("## Summary\n\n")
	fmt.Fprintf(&b, "- Object: `%s`, namespace `%s`\n", is.target, is.namespace)
	if is.cluster != "" {
		fmt.Fprintf(&b, "- Cluster: `%s`\n", is.cluster)
	}
	fmt.Fprintf(&b, "- From chat: %s\n", where(is.caller))
	if is.alert != "" {
		b.WriteString("\n### Alert\n\n")
		b.WriteString(fenced(is.alert))
	}
	b.WriteString("\n## kubectl describe\n\n")
	b.WriteString(fenced(is.describe))
	if is.describeCut {
		fmt.Fprintf(&b, "\n_(cut at %d KiB)_\n", maxDescribeBytes>>10)
	}
	for _, l := range is.logs {
		run := "current run"
		if l.previous {
			run = "previous run"
		}
		fmt.Fprintf(&b, "\n## Logs (%s, the last %d lines of each container)\n\n", run, is.lines)
		switch {
		case l.err != "":
			fmt.Fprintf(&b, "_Not read: %s_\n", strings.ReplaceAll(l.err, "\n", " "))
		case l.text == "":
			b.WriteString("_No log lines._\n")
		default:
			b.WriteString(fenced(l.text))
			if l.cut {
				fmt.Fprintf(&b, "\n_(earlier lines left out: the last lines of each container, at most %d KiB, lines cut at %d bytes)_\n",
					maxLogBytes>>10, maxLineBytes)
			}
		}
	}
	b.WriteString("\n---\n_Opened by kubechat. Secret values of the namespace are masked._\n")
	return title, b.String()
}

// where says in words where in chat the issue was asked for: platforms
// give no permalink to a message, so the platform, channel, thread and
// user are named.
func where(c executor.Caller) string {
	var parts []string
	if c.Channel != "" {
		parts = append(parts, fmt.Sprintf("channel `%s`", c.Channel))
	}
	if c.Platform != "" {
		parts = append(parts, fmt.Sprintf("on `%s`", c.Platform))
	}
	if c.ChannelID != "" && c.ChannelID != c.Channel {
		parts = append(parts, fmt.Sprintf("(id `%s`)", c.ChannelID))
	}
	if t := c.ThreadRoot; t != "" {
		parts = append(parts, fmt.Sprintf("thread `%s`", t))
	} else if c.ThreadID != "" {
		parts = append(parts, fmt.Sprintf("thread `%s`", c.ThreadID))
	}
	who := c.UserName
	if who == "" {
		who = c.UserID
	}
	if who != "" {
		parts = append(parts, fmt.Sprintf("asked by `%s`", who))
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, " ")
}

// fenced puts text in a code fence longer than any run of backticks in it.
func fenced(text string) string {
	longest, run := 0, 0
	for _, r := range text {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + "\n" + strings.TrimRight(text, "\n") + "\n" + f + "\n"
}
