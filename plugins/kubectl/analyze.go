package kubectl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	envutil "k8s.io/kubectl/pkg/cmd/set/env"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubechat/kubechat/internal/executor"
)

// Analyze parses args with kubectl's own command tree and flag sets, checks
// them against the allow-list (allow.go), and resolves every resource they
// name through discovery. It runs nothing and reads no objects.
func (e *Executor) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	root, _ := newCommand(genericiooptions.NewTestIOStreamsDiscard(), nil, e.cacheDir, "")
	p, err := parseArgs(root, args)
	if err != nil {
		return executor.Analysis{}, err
	}
	return e.analyze(p)
}

// parsed is a command after kubectl's flag parsing.
type parsed struct {
	sub  *cobra.Command
	verb string
	spec spec
	// pos are the positional arguments; dash is the index of the first
	// one after "--", or -1.
	pos  []string
	dash int
}

// parseArgs finds the subcommand, refuses what is not on the allow-list,
// and parses the flags as kubectl will.
func parseArgs(root *cobra.Command, args []string) (parsed, error) {
	var p parsed
	sub, rest, err := root.Find(args)
	if err != nil || sub == root {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") && sub == root {
			return p, errors.New("kubectl needs a subcommand, for example: kubectl get pods")
		}
		return p, fmt.Errorf("unknown kubectl command %q", firstWord(args))
	}
	p.sub, p.verb = sub, verbOf(sub)
	for c := sub; c.HasParent(); c = c.Parent() {
		v := verbOf(c)
		if why, ok := refusedCommands[v]; ok && (c == sub || !refusedBare[v]) {
			return p, fmt.Errorf("kubectl %s is not available in chat: %s", v, why)
		}
	}
	s, ok := commands[p.verb]
	if !ok {
		return p, fmt.Errorf("kubectl %s is not available in chat", p.verb)
	}
	p.spec = s
	sub.InitDefaultHelpFlag()
	if err := sub.ParseFlags(rest); err != nil {
		return p, fmt.Errorf("kubectl %s: %w", p.verb, err)
	}
	p.pos = sub.Flags().Args()
	p.dash = sub.Flags().ArgsLenAtDash()
	if p.dash >= 0 && p.verb != "run" {
		return p, fmt.Errorf("kubectl %s: \"--\" is only for the command of kubectl run", p.verb)
	}
	return p, nil
}

// analyze checks every flag that was set and resolves what the command
// acts on.
func (e *Executor) analyze(p parsed) (executor.Analysis, error) {
	a := executor.Analysis{Verb: p.verb}
	root := p.sub.Root()
	var problems []error
	var from []string
	p.sub.Flags().Visit(func(f *pflag.Flag) {
		if connectionFlags[f.Name] && root.PersistentFlags().Lookup(f.Name) == f {
			problems = append(problems, fmt.Errorf("the flag --%s is not allowed: %s", f.Name, connection))
			return
		}
		rule, ok := flags[f.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("the flag --%s of kubectl %s is not allowed in chat (not on kubechat's allow-list)", f.Name, p.verb))
		case rule.kind == flagRefused:
			problems = append(problems, fmt.Errorf("the flag --%s is not allowed: %s", f.Name, rule.reason))
		case rule.kind == flagOutput:
			if err := checkOutput(f.Value.String()); err != nil {
				problems = append(problems, err)
			}
		case rule.kind == flagStreaming:
			// rollout status watches until the rollout ends, and the
			// executor bounds it with --timeout: it ends on its own.
			if f.Value.String() == "true" && p.verb != "rollout status" {
				a.Streaming = true
			}
		case rule.kind == flagReads:
			from = append(from, f.Value.String())
		}
	})
	if len(problems) > 0 {
		return a, errors.Join(problems...)
	}
	if f := p.sub.Flags().Lookup("namespace"); f != nil && f.Changed {
		a.Namespaces = append(a.Namespaces, f.Value.String())
	}
	if f := p.sub.Flags().Lookup("all-namespaces"); f != nil && f.Value.String() == "true" {
		a.AllNamespaces = true
	}
	if p.spec.namespace != "" {
		a.Namespaces = append(a.Namespaces, p.spec.namespace)
	}
	if f := p.sub.Flags().Lookup("namespaces"); f != nil && f.Changed {
		ns, _ := p.sub.Flags().GetStringSlice("namespaces")
		a.Namespaces = append(a.Namespaces, ns...)
	}
	if raw := p.sub.Flags().Lookup("raw"); raw != nil && raw.Changed {
		if len(p.pos) > 0 {
			return a, fmt.Errorf("kubectl %s --raw takes no resource arguments (%s)", p.verb, strings.Join(p.pos, " "))
		}
		return e.rawAnalysis(a, raw.Value.String())
	}
	if err := e.resolver.init(e.base); err != nil && needsDiscovery(p, from) {
		return a, err
	}
	res, err := e.argResources(p)
	if err != nil {
		return a, fmt.Errorf("kubectl %s: %w", p.verb, err)
	}
	a.Resources = append(res, p.spec.fixed...)
	for _, f := range from {
		typ, _, ok := strings.Cut(f, "/")
		if !ok {
			continue // --from=cronjob/x names an object; other forms name no resource
		}
		rs, err := e.resolver.resources(typ)
		if err != nil {
			return a, fmt.Errorf("kubectl %s --from %s: %w", p.verb, f, err)
		}
		a.Resources = append(a.Resources, rs...)
	}
	a.Resources = dedupe(a.Resources)
	return a, nil
}

func needsDiscovery(p parsed, from []string) bool {
	return len(from) > 0 || p.spec.args != argsNone && p.spec.args != argsFixed
}

// rawAnalysis analyzes get|delete --raw PATH.
func (e *Executor) rawAnalysis(a executor.Analysis, rawPath string) (executor.Analysis, error) {
	method := http.MethodGet
	switch a.Verb {
	case "get":
	case "delete":
		method = http.MethodDelete
	default:
		return a, fmt.Errorf("kubectl %s --raw reads the request body from a file (-f), which chat cannot give", a.Verb)
	}
	if err := e.resolver.init(e.base); err != nil {
		return a, err
	}
	r, err := e.resolver.raw(rawPath, method)
	if err != nil {
		return a, err
	}
	r.Verb, r.Streaming = a.Verb, r.Streaming || a.Streaming
	return r, nil
}

// argResources resolves the resources a command's positional arguments name.
func (e *Executor) argResources(p parsed) ([]executor.Resource, error) {
	args := p.pos
	switch p.spec.args {
	case argsNone, argsFixed:
		return nil, nil
	case argsLogs:
		if len(args) == 0 {
			return nil, nil // kubectl asks for a pod or a selector
		}
		if typ, _, ok := strings.Cut(args[0], "/"); ok {
			return e.resolver.resources(typ)
		}
		return []executor.Resource{core("pods", true)}, nil
	case argsPairs:
		resources, _, err := cmdutil.GetResourcesAndPairs(args, p.spec.pairType)
		if err != nil {
			return nil, err
		}
		args = resources
	case argsEnv:
		resources, _, ok := envutil.SplitEnvironmentFromResources(args)
		if !ok {
			return nil, errors.New("all resources must be specified before environment changes")
		}
		args = resources
	case argsLastIsValue:
		if len(args) > 0 {
			args = args[:len(args)-1]
		}
	case argsTaint:
		var resources []string
		for _, s := range args {
			if strings.Contains(s, "=") || strings.Contains(s, ":") || strings.HasSuffix(s, "-") {
				break
			}
			resources = append(resources, s)
		}
		args = resources
	}
	return e.typeNames(args)
}

// typeNames resolves "TYPE[,TYPE...] [NAME...]" or "TYPE/NAME...", the
// forms kubectl's resource builder takes.
func (e *Executor) typeNames(args []string) ([]executor.Resource, error) {
	if len(args) == 0 {
		return nil, nil
	}
	if !strings.Contains(args[0], "/") {
		for _, a := range args[1:] {
			if strings.Contains(a, "/") {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'")
			}
		}
		return e.resolver.resources(args[0])
	}
	var out []executor.Resource
	for _, a := range args {
		typ, name, ok := strings.Cut(a, "/")
		if !ok || typ == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("arguments in resource/name form must have a single resource and name: %q", a)
		}
		rs, err := e.resolver.resources(typ)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// checkOutput allows kubectl's built-in output formats and inline templates.
func checkOutput(v string) error {
	name, _, hasValue := strings.Cut(v, "=")
	switch {
	case v == "" || outputFormats[v]:
		return nil
	case hasValue && inlineFormats[name]:
		return nil
	}
	if inline, ok := fileFormats[name]; ok {
		return fmt.Errorf("-o %s is not allowed: it reads a template from a local file; give the template inline: -o %s=TEMPLATE", name, inline)
	}
	names := make([]string, 0, len(outputFormats)+len(inlineFormats))
	for f := range outputFormats {
		names = append(names, f)
	}
	for f := range inlineFormats {
		names = append(names, f+"=...")
	}
	sort.Strings(names)
	return fmt.Errorf("-o %q is not an output format kubechat allows (%s)", v, strings.Join(names, ", "))
}

func dedupe(rs []executor.Resource) []executor.Resource {
	var out []executor.Resource
	for _, r := range rs {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}
