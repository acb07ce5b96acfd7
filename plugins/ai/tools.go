package ai

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
)

// tool is one function the model may call: a fixed, read-only command of
// one executor type. The model fills in names, never flags: every value
// must match nameRE, so none can start a flag or carry a path.
type tool struct {
	name        string
	executor    string // the executor type that runs it
	description string
	params      []param
	// logs marks the tools that send container logs (privacy.sendLogs).
	logs bool
	// argv builds the command's argv from the checked arguments.
	argv func(a args) []string
}

type param struct {
	name, description string
	required          bool
	enum              []string
	integer           bool
}

// args are a call's arguments, checked against the tool's params.
type args map[string]string

// nameRE matches what the model may put in an argv element: resource,
// object, container and namespace names. No leading dash (a flag), no
// spaces, slashes only as kind/name.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._:-]*(/[a-zA-Z0-9][a-zA-Z0-9._:-]*)?$`)

// clusterScoped are the resources get and describe take without a namespace.
var clusterScoped = []string{"nodes", "node", "no", "namespaces", "namespace", "ns", "persistentvolumes", "pv",
	"storageclasses", "sc", "clusterroles", "clusterrolebindings", "customresourcedefinitions", "crd", "crds",
	"priorityclasses", "ingressclasses", "apiservices"}

var (
	pNamespace = param{name: "namespace", description: "The namespace.", required: true}
	pResource  = param{name: "resource", description: "The resource type, as kubectl names it: pods, deployments, services, nodes, deployments.apps…", required: true}
	pName      = param{name: "name", description: "The object's name."}
)

// tools is the fixed table of tools. Adding one (argocd's, when an argocd
// executor exists) is one entry: the tool is offered only in channels that
// bind an executor of its type, and runs through that executor's policy.
var tools = []tool{
	{name: "kubectl_get", executor: "kubectl", description: "List objects, or show one, as kubectl get -o wide does.",
		params: []param{pResource, pName, {name: "namespace", description: "The namespace (leave out for cluster-scoped resources such as nodes)."}},
		argv: func(a args) []string {
			return withNS(append([]string{"get", a["resource"]}, opt(a["name"])...), a, "-o", "wide")
		}},
	{name: "kubectl_describe", executor: "kubectl", description: "Describe one object: its spec, status, conditions and recent events.",
		params: []param{pResource, {name: "name", description: "The object's name.", required: true}, {name: "namespace", description: "The namespace (leave out for cluster-scoped resources such as nodes)."}},
		argv:   func(a args) []string { return withNS([]string{"describe", a["resource"], a["name"]}, a) }},
	{name: "kubectl_logs", executor: "kubectl", logs: true, description: "The last lines of a pod's container logs.",
		params: []param{{name: "pod", description: "The pod's name.", required: true}, pNamespace,
			{name: "container", description: "The container (default: the pod's first)."},
			{name: "previous", description: "true for the previous, crashed instance of the container.", enum: []string{"true", "false"}},
			{name: "tail", description: "How many lines (capped by the agent's settings).", integer: true}},
		argv: func(a args) []string {
			argv := []string{"logs", a["pod"], "-n", a["namespace"], "--tail", a["tail"]}
			if a["container"] != "" {
				argv = append(argv, "-c", a["container"])
			}
			if a["previous"] == "true" {
				argv = append(argv, "--previous")
			}
			return argv
		}},
	{name: "kubectl_events", executor: "kubectl", description: "Recent events of a namespace, or of one object (kind/name).",
		params: []param{pNamespace, {name: "for", description: "An object as kind/name, such as pod/web-1 or deployment/web."}},
		argv: func(a args) []string {
			argv := []string{"events", "-n", a["namespace"]}
			if a["for"] != "" {
				argv = append(argv, "--for", a["for"])
			}
			return argv
		}},
	{name: "kubectl_top", executor: "kubectl", description: "CPU and memory use of pods in a namespace, or of nodes (needs metrics-server).",
		params: []param{{name: "of", description: "pod or node.", required: true, enum: []string{"pod", "node"}}, pName,
			{name: "namespace", description: "The namespace (for pods)."}},
		argv: func(a args) []string { return withNS(append([]string{"top", a["of"]}, opt(a["name"])...), a) }},
	{name: "helm_status", executor: "helm", description: "A Helm release's status.",
		params: []param{{name: "release", description: "The release's name.", required: true}, pNamespace},
		argv:   func(a args) []string { return []string{"status", a["release"], "-n", a["namespace"]} }},
	{name: "helm_history", executor: "helm", description: "A Helm release's revisions.",
		params: []param{{name: "release", description: "The release's name.", required: true}, pNamespace},
		argv:   func(a args) []string { return []string{"history", a["release"], "-n", a["namespace"], "--max", "10"} }},
	{name: "flux_get", executor: "flux", description: "Flux Kustomizations or Git sources of a namespace, with their readiness.",
		params: []param{{name: "kind", description: "kustomizations or sources git.", required: true, enum: []string{"kustomizations", "sources git"}}, pNamespace},
		argv: func(a args) []string {
			if a["kind"] == "sources git" {
				return []string{"get", "sources", "git", "-n", a["namespace"]}
			}
			return []string{"get", "kustomizations", "-n", a["namespace"]}
		}},
	{name: "argocd_app_get", executor: "argocd", description: "An Argo CD Application's sync and health status.",
		params: []param{{name: "name", description: "The Application's name.", required: true}, {name: "namespace", description: "The Application's namespace (default: Argo CD's)."}},
		argv:   func(a args) []string { return withNS([]string{"app", "get", a["name"]}, a) }},
}

func opt(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func withNS(argv []string, a args, more ...string) []string {
	if a["namespace"] != "" {
		argv = append(argv, "-n", a["namespace"])
	}
	return append(argv, more...)
}

func toolNamed(name string) (tool, bool) {
	i := slices.IndexFunc(tools, func(t tool) bool { return t.name == name })
	if i < 0 {
		return tool{}, false
	}
	return tools[i], true
}

// definition is t as the Chat Completions API offers it.
func (t tool) definition() openai.ChatCompletionToolUnionParam {
	props := map[string]any{}
	var required []string
	for _, p := range t.params {
		s := map[string]any{"type": "string", "description": p.description}
		if p.integer {
			s["type"] = "integer"
		}
		if len(p.enum) > 0 {
			s["enum"] = p.enum
		}
		props[p.name] = s
		if p.required {
			required = append(required, p.name)
		}
	}
	schema := openai.FunctionParameters{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		schema["required"] = required
	}
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: t.name, Description: openai.String(t.description), Parameters: schema,
	})
}

// parse checks a call's JSON arguments against t's params. maxLines caps
// a logs tail.
func (t tool) parse(raw string, maxLines int) (args, error) {
	var in map[string]any
	if raw == "" {
		raw = "{}"
	}
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return nil, fmt.Errorf("the arguments are not a JSON object: %v", err)
	}
	out := args{}
	for k, v := range in {
		i := slices.IndexFunc(t.params, func(p param) bool { return p.name == k })
		if i < 0 {
			return nil, fmt.Errorf("%s takes no argument %q", t.name, k)
		}
		p := t.params[i]
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		case nil:
			continue
		default:
			return nil, fmt.Errorf("argument %q must be a string", k)
		}
		switch {
		case s == "":
		case len(p.enum) > 0:
			if !slices.Contains(p.enum, s) {
				return nil, fmt.Errorf("argument %q must be one of %v", k, p.enum)
			}
		case p.integer:
			if _, err := strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("argument %q must be a whole number", k)
			}
		case len(s) > 253 || !nameRE.MatchString(s):
			return nil, fmt.Errorf("argument %q: %q is not a Kubernetes name", k, s)
		}
		out[k] = s
	}
	for _, p := range t.params {
		if p.required && out[p.name] == "" {
			return nil, fmt.Errorf("%s needs the argument %q", t.name, p.name)
		}
	}
	if r := out["resource"]; r != "" && out["namespace"] == "" && !slices.Contains(clusterScoped, r) {
		return nil, fmt.Errorf("%s of %s needs the argument \"namespace\"", t.name, r)
	}
	if t.name == "kubectl_top" && out["of"] == "pod" && out["namespace"] == "" {
		return nil, fmt.Errorf("kubectl_top of pods needs the argument \"namespace\"")
	}
	if t.logs {
		n, _ := strconv.Atoi(out["tail"])
		if n <= 0 || n > maxLines {
			n = maxLines
		}
		out["tail"] = strconv.Itoa(n)
	}
	return out, nil
}
