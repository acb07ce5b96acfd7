package action

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/command"
	"github.com/kubechat/kubechat/internal/event"
)

var crash = event.Event{Source: "pods", Cluster: "prod", Reason: "CrashLoopBackOff", Transition: event.Failing,
	Object: event.Object{Kind: "Pod", Namespace: "web", Name: "web-1"}, Labels: map[string]string{"service": "api"}}

func TestExpand(t *testing.T) {
	tmpl, err := Parse(`kubectl logs {name} -n {namespace} --previous --tail 50 -l "svc={label:service}" --context={cluster}-{kind}`, nil)
	require.NoError(t, err)
	require.Equal(t, "kubectl", tmpl.Name())
	cmd, err := tmpl.Expand(crash)
	require.NoError(t, err)
	require.Equal(t, []string{"logs", "web-1", "-n", "web", "--previous", "--tail", "50", "-l", "svc=api", "--context=prod-pod"}, cmd.Args)
}

func TestParseErrors(t *testing.T) {
	for text, want := range map[string]string{
		"kubectl logs {pod}":              "unknown placeholder {pod} (known: {cluster}, {kind}, {name}, {namespace}, {reason}, {label:NAME})",
		"kubectl logs {label:a-b}":        `"a-b" is not a label name`,
		"{kind} get pods":                 "the command name",
		"--cluster prod kubectl get pods": "--cluster has no meaning in an action",
		"kubectl logs {name}; rm -rf /":   "syntax error",
		"kubectl get pods $(id)":          "syntax error",
		"":                                "no command given",
	} {
		_, err := Parse(text, nil)
		require.ErrorContains(t, err, want, text)
	}
	_, err := Parse("kgp {name}", command.Aliases{"kgp": {"kubectl", "get", "pods"}})
	require.NoError(t, err, "aliases expand as in typed commands")
}

// Values from an event are data: they fill one word, never add one, and
// cannot turn into flags.
func TestExpandRefusesHostileValues(t *testing.T) {
	tmpl, err := Parse("kubectl logs {name} -n {namespace} {label:x}", nil)
	require.NoError(t, err)
	for name, ev := range map[string]event.Event{
		"a flag":          {Object: event.Object{Name: "--kubeconfig=/etc/x", Namespace: "web"}, Labels: map[string]string{"x": "y"}},
		"a short flag":    {Object: event.Object{Name: "-n", Namespace: "web"}, Labels: map[string]string{"x": "y"}},
		"missing label":   {Object: event.Object{Name: "web-1", Namespace: "web"}},
		"empty namespace": {Object: event.Object{Name: "web-1"}, Labels: map[string]string{"x": "y"}},
		"newline":         {Object: event.Object{Name: "web-1\nkubectl delete", Namespace: "web"}, Labels: map[string]string{"x": "y"}},
	} {
		_, err := tmpl.Expand(ev)
		require.Error(t, err, name)
	}
	cmd, err := tmpl.Expand(event.Event{Object: event.Object{Name: "web 1; rm -rf /", Namespace: "web"}, Labels: map[string]string{"x": "$(id)"}})
	require.NoError(t, err)
	require.Equal(t, []string{"logs", "web 1; rm -rf /", "-n", "web", "$(id)"}, cmd.Args, "shell syntax stays inside one argv word")
}

func TestMatches(t *testing.T) {
	require.True(t, Matches(crash, "pods", nil, nil))
	require.True(t, Matches(crash, "pods", []string{"ImagePullBackOff", "CrashLoopBackOff"}, nil))
	require.False(t, Matches(crash, "pods", []string{"ImagePullBackOff"}, nil))
	require.False(t, Matches(crash, "other", nil, nil))
	resolved := crash
	resolved.Transition = event.Resolved
	require.False(t, Matches(resolved, "pods", nil, nil), "a recovery runs nothing")
	created := event.Event{Source: "pods", Type: event.Create, Reason: "Created"}
	require.False(t, Matches(created, "pods", nil, nil), "an action for failures does not run on every change")
	require.True(t, Matches(created, "pods", []string{"Created"}, nil), "a one-off event runs an action that names its reason")
	warning := event.Event{Source: "pods", Type: event.Warning, Reason: "BackOff"}
	require.True(t, Matches(warning, "pods", nil, nil))
	// A pull request's events are about Kustomizations and Applications:
	// kinds keeps each executor's action to its own.
	pushed := event.Event{Source: "prs", Type: event.Update, Reason: "PullRequestUpdated", Object: event.Object{Kind: "Application"}}
	require.True(t, Matches(pushed, "prs", []string{"PullRequestUpdated"}, nil))
	require.True(t, Matches(pushed, "prs", []string{"PullRequestUpdated"}, []string{"application"}))
	require.False(t, Matches(pushed, "prs", []string{"PullRequestUpdated"}, []string{"Kustomization"}))
}
