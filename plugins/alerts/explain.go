package alerts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// Explain is the explain executor: "explain KIND/NAME [-n NS]" shows, for
// the object's recent events, what decided each channel's outcome. Its
// one verb, explain, is read-only; -n is checked against the policy's
// namespaces, and without it the policy's default namespace is used.
type Explain struct{ base }

// NewExplain builds the explain executor.
func NewExplain(name string, raw config.Raw, _ executor.Deps) (executor.Executor, error) {
	if err := decode("explain", name, raw); err != nil {
		return nil, err
	}
	e := &Explain{}
	e.name = name
	return e, nil
}

// ReadOnlyVerbs: explain only reads the agent's memory.
func (*Explain) ReadOnlyVerbs() []string { return []string{"explain"} }

const explainUsage = "usage: explain KIND/NAME [-n NAMESPACE]"

// explainRequest is a parsed explain command.
type explainRequest struct{ kind, name, namespace string }

func parseExplain(args []string) (explainRequest, error) {
	var r explainRequest
	var target []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-n" || a == "--namespace":
			if i+1 >= len(args) {
				return r, fmt.Errorf("%s needs a namespace; %s", a, explainUsage)
			}
			i++
			r.namespace = args[i]
		case strings.HasPrefix(a, "--namespace="):
			r.namespace = strings.TrimPrefix(a, "--namespace=")
		case strings.HasPrefix(a, "-"):
			return r, fmt.Errorf("unknown flag %q; %s", a, explainUsage)
		default:
			target = append(target, a)
		}
	}
	if len(target) != 1 {
		return r, fmt.Errorf("%s", explainUsage)
	}
	var ok bool
	r.kind, r.name, ok = strings.Cut(target[0], "/")
	if !ok || r.kind == "" || r.name == "" {
		return r, fmt.Errorf("%q is not KIND/NAME; %s", target[0], explainUsage)
	}
	return r, nil
}

// Analyze checks the syntax and names the namespace, for the policy.
func (*Explain) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	r, err := parseExplain(args)
	if err != nil {
		return executor.Analysis{}, err
	}
	a := executor.Analysis{Verb: "explain"}
	if r.namespace != "" {
		a.Namespaces = []string{r.namespace}
	}
	return a, nil
}

// Execute renders the recorded decisions about the object.
func (e *Explain) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	a := e.alerting()
	if a == nil {
		return executor.Result{}, errDetached
	}
	r, err := parseExplain(req.Args)
	if err != nil {
		return executor.Result{}, err
	}
	if r.namespace == "" {
		r.namespace = req.Namespace
	}
	traces := a.Explain(r.kind, r.namespace, r.name)
	if len(traces) == 0 {
		where := ""
		if r.namespace != "" {
			where = " in namespace " + r.namespace
		}
		return executor.Result{Output: fmt.Sprintf("No recent event about %s/%s%s reached the alerting pipeline "+
			"(a source's own filters drop events before it, and only the last %d events are kept).", r.kind, r.name, where, alerting.DefaultDecisionsKept)}, nil
	}
	var b strings.Builder
	for _, t := range traces {
		fmt.Fprintf(&b, "%s  %s  (source %s)\n", t.Time.UTC().Format(time.DateTime), t.Title, t.Source)
		for _, d := range t.Decisions {
			ch := d.Channel
			if ch == "" {
				ch = "(every channel)"
			}
			fmt.Fprintf(&b, "  %s: %s: %s\n", ch, d.Outcome, d.Rule)
		}
	}
	return executor.Result{Output: b.String()}, nil
}
