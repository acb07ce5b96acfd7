// Package action is the "actions" of the config: commands that run by
// themselves when an event matches, their output posted with the alert. A
// command is split into words once, when the config loads, exactly as a
// typed command is; placeholders such as {namespace} are then replaced
// inside single words, so an event's values are data and can never add a
// word, a flag or shell syntax.
package action

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/event"
)

// Placeholders are the event fields a command may use, besides {label:NAME}.
var Placeholders = []string{"cluster", "kind", "name", "namespace", "reason"}

var placeholder = regexp.MustCompile(`\{([^{}]*)\}`)

// labelName is what {label:NAME} accepts (Prometheus label names).
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Template is a parsed action command.
type Template struct {
	cmd command.Command
}

// Parse splits text as a typed command and checks its placeholders. The
// executor name and kubechat's own flags (--cluster) cannot hold placeholders.
func Parse(text string, aliases command.Aliases) (Template, error) {
	cmd, err := command.Parse(text, aliases)
	if err != nil {
		return Template{}, err
	}
	if cmd.Cluster != "" {
		return Template{}, errors.New("--cluster has no meaning in an action: it runs in the cluster of its event")
	}
	if placeholder.MatchString(cmd.Name) {
		return Template{}, fmt.Errorf("the command name %q cannot hold a placeholder", cmd.Name)
	}
	for _, arg := range cmd.Args {
		for _, m := range placeholder.FindAllStringSubmatch(arg, -1) {
			if err := checkPlaceholder(m[1]); err != nil {
				return Template{}, err
			}
		}
	}
	return Template{cmd: cmd}, nil
}

func checkPlaceholder(p string) error {
	if key, ok := strings.CutPrefix(p, "label:"); ok {
		if !labelName.MatchString(key) {
			return fmt.Errorf("placeholder {%s}: %q is not a label name", p, key)
		}
		return nil
	}
	if !slices.Contains(Placeholders, p) {
		return fmt.Errorf("unknown placeholder {%s} (known: {%s}, {label:NAME})", p, strings.Join(Placeholders, "}, {"))
	}
	return nil
}

// Name is the executor (or built-in) the command runs.
func (t Template) Name() string { return t.cmd.Name }

// Expand returns the command for ev, placeholders replaced. A value that is
// missing, would start a word with "-" (and so turn into a flag), or holds
// control characters is refused with an error naming the placeholder.
func (t Template) Expand(ev event.Event) (command.Command, error) {
	out := t.cmd
	out.Args = make([]string, len(t.cmd.Args))
	for i, arg := range t.cmd.Args {
		var errs []error
		word := placeholder.ReplaceAllStringFunc(arg, func(m string) string {
			p := m[1 : len(m)-1]
			v := value(ev, p)
			switch {
			case v == "":
				errs = append(errs, fmt.Errorf("the event has no value for {%s}", p))
			case strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }):
				errs = append(errs, fmt.Errorf("the value of {%s} holds control characters", p))
			}
			return v
		})
		if strings.HasPrefix(word, "-") && !strings.HasPrefix(arg, "-") {
			errs = append(errs, fmt.Errorf("argument %d would start with \"-\" after substitution (%q); refused, as it would read as a flag", i+1, word))
		}
		if err := errors.Join(errs...); err != nil {
			return command.Command{}, err
		}
		out.Args[i] = word
	}
	return out, nil
}

func value(ev event.Event, p string) string {
	if key, ok := strings.CutPrefix(p, "label:"); ok {
		return ev.Labels[key]
	}
	switch p {
	case "cluster":
		return ev.Cluster
	case "kind":
		return strings.ToLower(ev.Object.Kind)
	case "name":
		return ev.Object.Name
	case "namespace":
		return ev.Object.Namespace
	case "reason":
		return ev.Reason
	}
	return ""
}

// Matches reports whether ev triggers an action on source with reasons
// and kinds: the same source, never a recovery, one of reasons when any
// are given, and about an object of one of kinds (in any case) when any
// are given. An informational one-off event (a create, an update, a pull
// request's push) triggers only an action that names its reason, so an
// action written for failures never starts running on every change.
func Matches(ev event.Event, source string, reasons, kinds []string) bool {
	if ev.Source != source || ev.Transition == event.Resolved {
		return false
	}
	if len(kinds) > 0 && !slices.ContainsFunc(kinds, func(k string) bool { return strings.EqualFold(k, ev.Object.Kind) }) {
		return false
	}
	if ev.Transition == "" && ev.Type != event.Error && ev.Type != event.Warning {
		return slices.Contains(reasons, ev.Reason)
	}
	return len(reasons) == 0 || slices.Contains(reasons, ev.Reason)
}
