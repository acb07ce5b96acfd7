// Package run is the run executor, in the style of Airflow's
// KubernetesPodOperator: "@kubechat run <template> [name=value ...]" runs a
// pod template declared in config (an image, an argv with {{parameter}}
// placeholders, resources, a deadline and a ServiceAccount), such as a
// database migration check or a network probe.
//
// Only templates named in config run: chat never chooses an image or a
// command. Arguments are checked against the template's parameters (known
// name, required, pattern or enum) before any pod exists, and each value
// replaces its placeholders inside single argv elements: nothing is ever
// joined into a shell line.
package run

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/podrun"
)

// Executor runs pod templates.
type Executor struct {
	name      string
	namespace string
	templates []Template
	runner    *podrun.Runner
}

// New builds the run executor and checks every template. It does not
// contact the cluster.
func New(name string, raw config.Raw, d executor.Deps) (executor.Executor, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("run executor %q: %w", name, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("run executor %q: %w", name, err)
	}
	e := &Executor{name: name, namespace: s.Namespace, templates: s.Templates}
	if d.RESTConfig != nil {
		cs, err := kubernetes.NewForConfig(d.RESTConfig)
		if err != nil {
			return nil, fmt.Errorf("run executor %q: %w", name, err)
		}
		e.runner = podrun.New(cs, d.Cluster, d.Log)
	}
	return e, nil
}

// Name is the configured executor name.
func (e *Executor) Name() string { return e.name }

// ReadOnlyVerbs are the template names: a policy that lists no verbs
// allows every template; one that lists verbs allows those templates.
func (e *Executor) ReadOnlyVerbs() []string {
	names := make([]string, 0, len(e.templates))
	for _, t := range e.templates {
		names = append(names, t.Name)
	}
	return names
}

// PodNamespaces are the namespaces template pods run in, as configured.
func (e *Executor) PodNamespaces() []string {
	var out []string
	if e.namespace != "" {
		out = append(out, e.namespace)
	}
	for _, t := range e.templates {
		if ns, _, ok := strings.Cut(t.ServiceAccount, "/"); ok {
			out = append(out, ns)
		}
	}
	return out
}

// Analyze finds the template and checks the arguments against its
// parameters, so that a bad one is refused before any pod exists. The
// verb, for policy, is the template's name.
func (e *Executor) Analyze(_ context.Context, args []string) (executor.Analysis, error) {
	t, _, err := e.bind(args)
	if err != nil {
		return executor.Analysis{}, err
	}
	a := executor.Analysis{Verb: t.Name}
	if e.namespace != "" {
		a.Namespaces = []string{e.namespace}
	}
	return a, nil
}

// OpaqueResources says why policy.resources cannot restrict run.
func (e *Executor) OpaqueResources() string {
	return "a template's image decides what it reads and changes; restrict run with verbs (template names)"
}

// bind resolves args ("<template> [name=value ...]") to a template and
// the value of each of its parameters.
func (e *Executor) bind(args []string) (*Template, map[string]string, error) {
	if len(args) == 0 {
		return nil, nil, fmt.Errorf("run needs a template: run <template> [name=value ...]; templates: %s", strings.Join(e.ReadOnlyVerbs(), ", "))
	}
	var t *Template
	for i := range e.templates {
		if e.templates[i].Name == args[0] {
			t = &e.templates[i]
		}
	}
	if t == nil {
		return nil, nil, fmt.Errorf("unknown template %q (templates: %s)", args[0], strings.Join(e.ReadOnlyVerbs(), ", "))
	}
	values := map[string]string{}
	for _, arg := range args[1:] {
		name, value, ok := strings.Cut(arg, "=")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("template %q: argument %q is not name=value (parameters: %s)", t.Name, arg, t.parameterNames())
		}
		i := slices.IndexFunc(t.Parameters, func(p Parameter) bool { return p.Name == name })
		if i < 0 {
			return nil, nil, fmt.Errorf("template %q has no parameter %q (parameters: %s)", t.Name, name, t.parameterNames())
		}
		if _, dup := values[name]; dup {
			return nil, nil, fmt.Errorf("template %q: parameter %q is given twice", t.Name, name)
		}
		if err := t.Parameters[i].check(value); err != nil {
			return nil, nil, fmt.Errorf("template %q: parameter %q: %w", t.Name, name, err)
		}
		values[name] = value
	}
	for _, p := range t.Parameters {
		if _, ok := values[p.Name]; ok {
			continue
		}
		if p.Required {
			return nil, nil, fmt.Errorf("template %q: parameter %q is required (%s=...)", t.Name, p.Name, p.Name)
		}
		values[p.Name] = p.Default
	}
	return t, values, nil
}

func (t *Template) parameterNames() string {
	if len(t.Parameters) == 0 {
		return "none"
	}
	var names []string
	for _, p := range t.Parameters {
		n := p.Name
		if p.Required {
			n += " (required)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// Argv substitutes values into the template's command, element by element.
func (t *Template) Argv(values map[string]string) []string {
	out := make([]string, len(t.Command))
	for i, el := range t.Command {
		out[i] = placeholderRE.ReplaceAllStringFunc(el, func(m string) string {
			return values[placeholderRE.FindStringSubmatch(m)[1]]
		})
	}
	return out
}

// Execute runs the template's pod as its ServiceAccount (or the caller's)
// and returns its log as the output.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	t, values, err := e.bind(req.Args)
	if err != nil {
		return executor.Result{}, err
	}
	if e.runner == nil {
		return executor.Result{}, errors.New("run: the agent has no cluster connection")
	}
	var ns, sa string
	if t.ServiceAccount != "" {
		ns, sa, _ = strings.Cut(t.ServiceAccount, "/")
	} else if ns, sa, err = podrun.PodIdentity(req.Identity, e.namespace); err != nil {
		return executor.Result{}, err
	}
	pod := config.PodSettings{ImagePullPolicy: t.ImagePullPolicy, Resources: t.Resources}.WithDefaults()
	out, err := e.runner.Run(ctx, podrun.Spec{
		Namespace:       ns,
		ServiceAccount:  sa,
		Executor:        e.name + "-" + t.Name,
		Image:           t.Image,
		ImagePullPolicy: pod.ImagePullPolicy,
		Command:         t.Argv(values),
		Env:             t.Env,
		Resources:       pod.Resources,
		Deadline:        podrun.Deadline(ctx, t.Deadline.D()),
		MaxOutputBytes:  req.MaxOutputBytes,
	})
	if err != nil {
		return executor.Result{}, fmt.Errorf("run %s: %w", t.Name, err)
	}
	return podrun.Result(out), nil
}
