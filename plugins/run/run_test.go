package run

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

const settings = `
namespace: ops
templates:
  - name: probe
    image: registry.example/netprobe:1.2
    command: [/probe, "--target={{target}}", --port, "{{ port }}"]
    parameters:
      - name: target
        required: true
        pattern: '[a-z0-9.-]+'
      - name: port
        enum: ["443", "5432"]
        default: "443"
    deadline: 20s
  - name: migrations
    image: registry.example/migrate:3
    command: [/migrate, status]
    serviceAccount: ops/migrator
`

func newRun(t *testing.T, text string) (*Executor, error) {
	t.Helper()
	raw, err := config.RawFromYAML(text)
	require.NoError(t, err)
	ex, err := New("run", raw, executor.Deps{})
	if err != nil {
		return nil, err
	}
	return ex.(*Executor), nil
}

func TestBind(t *testing.T) {
	e, err := newRun(t, settings)
	require.NoError(t, err)
	a, err := e.Analyze(t.Context(), []string{"probe", "target=db.internal"})
	require.NoError(t, err)
	require.Equal(t, executor.Analysis{Verb: "probe", Namespaces: []string{"ops"}}, a)
	tpl, values, err := e.bind([]string{"probe", "target=db.internal", "port=5432"})
	require.NoError(t, err)
	require.Equal(t, []string{"/probe", "--target=db.internal", "--port", "5432"}, tpl.Argv(values))
	_, values, err = e.bind([]string{"probe", "target=a"})
	require.NoError(t, err)
	require.Equal(t, "443", values["port"], "the default")
	require.Equal(t, []string{"probe", "migrations"}, e.ReadOnlyVerbs())
	require.ElementsMatch(t, []string{"ops", "ops"}, e.PodNamespaces())

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no template":    {nil, "run needs a template: run <template> [name=value ...]; templates: probe, migrations"},
		"unknown":        {[]string{"shell"}, `unknown template "shell" (templates: probe, migrations)`},
		"not name=value": {[]string{"probe", "db.internal"}, `template "probe": argument "db.internal" is not name=value (parameters: target (required), port)`},
		"unknown param":  {[]string{"probe", "target=a", "image=evil"}, `template "probe" has no parameter "image"`},
		"pattern":        {[]string{"probe", "target=a;rm -rf /"}, `template "probe": parameter "target": "a;rm -rf /" does not match the pattern [a-z0-9.-]+`},
		"flag injection": {[]string{"probe", "target=--kubeconfig=/x"}, `does not match the pattern`},
		"enum":           {[]string{"probe", "target=a", "port=22"}, `parameter "port": "22" is not one of 443, 5432`},
		"required":       {[]string{"probe", "port=443"}, `template "probe": parameter "target" is required (target=...)`},
		"twice":          {[]string{"probe", "target=a", "target=b"}, `parameter "target" is given twice`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.Analyze(t.Context(), tc.args)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSettingsErrors(t *testing.T) {
	_, err := newRun(t, `
namespace: ops
templates:
  - name: Bad_Name
    image: ""
    command: ["/x", "{{nope}}"]
    serviceAccount: other/sa
    resources:
      requests: {memory: 1Gi}
      limits: {memory: 1Mi}
    parameters:
      - name: free
      - name: p
        pattern: "("
`)
	require.Error(t, err)
	for _, want := range []string{
		`settings.templates[0].name: "Bad_Name" is not a valid name`,
		`settings.templates[0].image: "" is not an image reference`,
		`settings.templates[0].command[1]: placeholder "{{nope}}" names no declared parameter`,
		`settings.templates[0].serviceAccount: "other/sa" is not in namespace "ops"`,
		`settings.templates[0].resources.requests.memory: 1Gi is more than the limit 1Mi`,
		`settings.templates[0].parameters[0]: parameter "free" needs a pattern or an enum`,
		`settings.templates[0].parameters[1].pattern: invalid regular expression`,
	} {
		require.ErrorContains(t, err, want)
	}
	_, err = newRun(t, "templates: []\n")
	require.ErrorContains(t, err, "settings.templates: declare at least one template")
	_, err = newRun(t, "templates:\n  - name: x\n    imag: y\n")
	require.ErrorContains(t, err, `unknown field "imag"`)
}
