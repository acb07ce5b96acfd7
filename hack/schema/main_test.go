package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/chat/platforms"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins"
)

// inRoot runs the test in the module root, where the generator runs.
func inRoot(t *testing.T) {
	t.Helper()
	t.Chdir(filepath.Join("..", ".."))
}

// TestCommittedSchemasAreCurrent: the committed schemas are what the
// generator makes of the Go types now, so a change to a config or
// Settings struct, or to the registries, fails here until the schemas
// are regenerated.
func TestCommittedSchemasAreCurrent(t *testing.T) {
	inRoot(t)
	files, err := generate()
	require.NoError(t, err)
	require.Len(t, files, 2)
	for name, want := range files {
		got, err := os.ReadFile(name)
		require.NoError(t, err)
		if !bytes.Equal(want, got) {
			t.Errorf("%s is out of date: run go generate ./configs", name)
		}
	}
}

// compile compiles the schema file as Helm compiles a chart's values schema.
func compile(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("file:///"+filepath.Base(file), doc))
	s, err := c.Compile("file:///" + filepath.Base(file))
	require.NoError(t, err)
	return s
}

// instance reads YAML as Load reads it (YAML 1.2, yaml.v3) into the JSON
// values a validator takes.
func instance(t *testing.T, text []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(text, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return doc
}

// leaves are the innermost problems of err, each as "/instance/path: message".
func leaves(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	var out []string
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			msg := e.Error()
			if _, after, ok := strings.Cut(msg, "': "); ok {
				msg = after
			}
			out = append(out, "/"+strings.Join(e.InstanceLocation, "/")+": "+msg)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

const validConfig = `cluster:
  name: dev
platforms:
  - name: ops
    type: slack
    settings:
      botToken: ${SLACK_BOT_TOKEN}
      appToken: {fromEnv: SLACK_APP_TOKEN}
channels:
  - name: alerts
    platform: ops
    bindings:
      sources: [pods]
      executors: [kubectl]
    identity:
      serviceAccount: kubechat/ops
    rateLimit:
      perSecond: 0.5
      burst: 5
sources:
  - name: pods
    type: kubernetes
    kubernetes:
      resources:
        - type: v1/pods
          events: [create, error]
executors:
  - type: kubectl
    policy:
      verbs: [get, describe]
      timeout: 30s
  - type: flux
    settings:
      github:
        token: {fromFile: /var/run/secrets/github/token}
`

// TestSchemaRefusesMistakes: a misspelt key at every level, inside a
// platform's and an executor's settings, and a wrong type are refused,
// each at the path of the object or value that holds it.
func TestSchemaRefusesMistakes(t *testing.T) {
	inRoot(t)
	s := compile(t, configFile)
	require.NoError(t, s.Validate(instance(t, []byte(validConfig))), "the base case is valid")
	for name, tc := range map[string]struct{ replace, with, want string }{
		"top level":              {"cluster:\n", "clustr: {}\ncluster:\n", `/: additional properties 'clustr' not allowed`},
		"cluster":                {"  name: dev\n", "  name: dev\n  namespce: x\n", `/cluster: additional properties 'namespce' not allowed`},
		"channel":                {"    bindings:\n", "    bindigs:\n", `/channels/0: additional properties 'bindigs' not allowed`},
		"bindings":               {"      executors: [kubectl]\n", "      executor: [kubectl]\n", `/channels/0/bindings: additional properties 'executor' not allowed`},
		"resource":               {"          events: [create, error]\n", "          events: [create, error]\n          lables: app=web\n", `/sources/0/kubernetes/resources/0: additional properties 'lables' not allowed`},
		"platform settings":      {"      botToken:", "      botTokn:", `/platforms/0/settings: additional properties 'botTokn' not allowed`},
		"executor settings":      {"      github:\n", "      gihtub:\n", `/executors/1/settings: additional properties 'gihtub' not allowed`},
		"nested settings":        {"        token: {fromFile", "        tokn: {fromFile", `/executors/1/settings/github: additional properties 'tokn' not allowed`},
		"policy":                 {"      verbs: [get, describe]\n", "      verb: [get, describe]\n", `/executors/0/policy: additional properties 'verb' not allowed`},
		"wrong type":             {"      verbs: [get, describe]\n", "      verbs: get\n", `/executors/0/policy/verbs: got string, want array`},
		"wrong number":           {"      burst: 5\n", "      burst: five\n", `/channels/0/rateLimit/burst: got string, want integer`},
		"rate out of range":      {"      perSecond: 0.5\n", "      perSecond: 1e308\n", `/channels/0/rateLimit/perSecond: maximum: got 1×10³⁰⁸, want 1×10⁰⁶`},
		"inline secret":          {"${SLACK_BOT_TOKEN}", "xoxb-inline", `/platforms/0/settings/botToken: 'xoxb-inline' does not match pattern`},
		"secret with both":       {"{fromEnv: SLACK_APP_TOKEN}", "{fromEnv: A, fromFile: /b}", `/platforms/0/settings/appToken: additional properties 'fromFile' not allowed`},
		"duration":               {"timeout: 30s", "timeout: 30 seconds", `/executors/0/policy/timeout: '30 seconds' does not match pattern`},
		"unknown platform type":  {"    type: slack\n", "    type: slak\n", `/platforms/0/type: value must be one of`},
		"unknown executor type":  {"  - type: kubectl\n", "  - type: kubctl\n", `/executors/0/type: value must be one of`},
		"settings of the type":   {"    type: slack\n", "    type: discord\n", `/platforms/0/settings: additional properties 'appToken' not allowed`},
		"list item without name": {"  - name: ops\n    type: slack\n", "  - type: slack\n", `/platforms/0: missing property 'name'`},
		"bad resource type":      {"type: v1/pods", "type: pods", `/sources/0/kubernetes/resources/0/type: 'pods' does not match pattern`},
		"bad event":              {"events: [create, error]", "events: [create, crash]", `/sources/0/kubernetes/resources/0/events/1: value must be one of`},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, validConfig, tc.replace, "the case does not apply")
			err := s.Validate(instance(t, []byte(strings.Replace(validConfig, tc.replace, tc.with, 1))))
			require.Error(t, err)
			got := leaves(err)
			require.True(t, slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, tc.want) }),
				"want a problem starting %q, got:\n%s", tc.want, strings.Join(got, "\n"))
		})
	}
}

// TestEveryExampleValidates: every example config validates against the
// config schema, and every chart values file against the chart's schema,
// both alone (as an editor sees it) and merged over the chart's defaults
// (as Helm checks it).
func TestEveryExampleValidates(t *testing.T) {
	inRoot(t)
	s := compile(t, configFile)
	files, err := filepath.Glob("configs/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, s.Validate(instance(t, b)), f)
	}

	chartSchema := compile(t, chartFile)
	ch, err := loader.Load(filepath.Dir(chartFile))
	require.NoError(t, err)
	files, err = filepath.Glob("configs/chart/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range append(files, "helm/kubechat/values.yaml") {
		vals, err := chartutil.ReadValuesFile(f)
		require.NoError(t, err)
		require.NoError(t, chartSchema.Validate(jsonValues(t, vals)), "%s alone", f)
		merged, err := chartutil.CoalesceValues(ch, vals)
		require.NoError(t, err)
		require.NoError(t, chartSchema.Validate(jsonValues(t, merged)), "%s over the chart's defaults", f)
	}
}

// jsonValues turns Helm values into the JSON values a validator takes.
func jsonValues(t *testing.T, vals chartutil.Values) any {
	t.Helper()
	b, err := json.Marshal(vals.AsMap())
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return doc
}

// TestExamplesNameTheSchema: every example starts with the line that
// points the YAML language server at its schema, by a path relative to
// the file.
func TestExamplesNameTheSchema(t *testing.T) {
	inRoot(t)
	for pattern, schema := range map[string]string{"configs/*.yaml": configFile, "configs/chart/*.yaml": chartFile} {
		files, err := filepath.Glob(pattern)
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			require.NoError(t, err)
			first, _, _ := strings.Cut(string(b), "\n")
			rel, ok := strings.CutPrefix(first, "# yaml-language-server: $schema=")
			require.True(t, ok, "%s starts with %q", f, first)
			require.Equal(t, filepath.Clean(schema), filepath.Join(filepath.Dir(f), rel), f)
		}
	}
}

// TestSettingsAreWhatFactoriesDecode: the Settings each registry entry
// names is the struct its factory decodes, so the schema checks what the
// factory reads: an unknown key makes the factory list the known ones,
// and they are Settings' fields.
func TestSettingsAreWhatFactoriesDecode(t *testing.T) {
	raw, err := config.RawFromYAML("schemaProbe: 1\n")
	require.NoError(t, err)
	check := func(t *testing.T, settings any, err error) {
		t.Helper()
		typ := reflect.TypeOf(settings)
		require.Equal(t, reflect.Struct, typ.Kind(), "Settings is a struct value, not a pointer")
		var names []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.IsExported() && name != "" && name != "-" {
				names = append(names, name)
			}
		}
		require.ErrorContains(t, err, fmt.Sprintf(`unknown field "schemaProbe" (known: %s)`, strings.Join(names, ", ")))
	}
	for name, p := range platforms.Factories {
		t.Run(name, func(t *testing.T) {
			_, err := p.New("probe", raw, chat.Deps{})
			check(t, p.Settings, err)
		})
	}
	for name, e := range plugins.Executors {
		t.Run(name, func(t *testing.T) {
			_, err := e.New("probe", raw, executor.Deps{})
			check(t, e.Settings, err)
		})
	}
}
