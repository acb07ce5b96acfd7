package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var known = Known{PlatformTypes: []string{"log", "slack"}, ExecutorTypes: []string{"flux", "helm", "kubectl"}}

const valid = `cluster:
  name: dev
platforms:
  - name: ops
    type: slack
    settings:
      botToken: ${TEST_BOT_TOKEN}
channels:
  - name: alerts
    platform: ops
    bindings:
      sources: [pods]
      executors: [kubectl]
    identity:
      serviceAccount: kubechat/ops
sources:
  - name: pods
    type: kubernetes
    kubernetes:
      namespaces:
        exclude: ["kube-.*"]
      resources:
        - type: v1/pods
          events: [create, error]
          labels: app=web
executors:
  - type: kubectl
    policy:
      verbs: [get, describe]
      namespaces: [default]
aliases:
  k: kubectl
`

func parse(t *testing.T, files ...string) (*Config, error) {
	t.Helper()
	var fs []File
	for i, f := range files {
		name := "config.yaml"
		if i > 0 {
			name = "override.yaml"
		}
		fs = append(fs, File{Name: name, Data: []byte(f)})
	}
	return Parse(known, fs...)
}

func TestParseValidAppliesDefaults(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "xoxb-secret-value")
	c, err := parse(t, valid)
	require.NoError(t, err)
	require.Equal(t, "dev", c.Cluster.Name)
	require.Equal(t, "json", c.Log.Format)
	require.Equal(t, DefaultListen, c.HTTP.Listen)
	require.Equal(t, "alerts", c.Channels[0].ID, "channel id defaults to its name")
	require.Equal(t, "kubectl", c.Executors[0].Name, "executor name defaults to its type")
	require.Equal(t, DefaultCommandTimeout, c.Executors[0].Policy.Timeout.D())

	var s struct {
		BotToken Secret `yaml:"botToken"`
	}
	require.NoError(t, DecodeStrict(c.Platforms[0].Settings, &s))
	require.Equal(t, "xoxb-secret-value", s.BotToken.Reveal())
	require.Equal(t, "env TEST_BOT_TOKEN", s.BotToken.Source())
}

// TestBadConfig covers the kinds of mistakes users make. Each error must name
// the file, the line and the field path.
func TestBadConfig(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "xoxb-secret-value")
	for name, tc := range map[string]struct {
		replace, with string
		want          string
	}{
		"unknown top-level key": {"cluster:\n", "clustr:\n  name: x\ncluster:\n",
			`config.yaml:1: clustr: unknown field "clustr" (known: cluster, log, http, platforms, channels, sources, executors, actions, aliases, users, ha, delivery, commands, reload, fleet, templates, inhibit)`},
		"unknown nested key": {"      events: [create, error]\n", "      events: [create, error]\n          lables: x\n",
			`config.yaml:25: sources[0].kubernetes.resources[0].lables: unknown field "lables"`},
		"unknown executor reference": {"executors: [kubectl]", "executors: [kubctl]",
			`config.yaml:13: channels[0].bindings.executors[0]: unknown executor "kubctl" (known: kubectl)`},
		"unknown source reference": {"sources: [pods]", "sources: [pod]",
			`config.yaml:12: channels[0].bindings.sources[0]: unknown source "pod" (known: pods)`},
		"unknown platform reference": {"    platform: ops\n", "    platform: opz\n",
			`config.yaml:10: channels[0].platform: unknown platform "opz" (known: ops)`},
		"unknown platform type": {"type: slack", "type: slak",
			`config.yaml:5: platforms[0].type: unknown platform type "slak" (known: log, slack)`},
		"unknown executor type": {"  - type: kubectl", "  - type: kubeclt",
			`config.yaml:27: executors[0].type: unknown executor type "kubeclt" (known: flux, helm, kubectl)`},
		"bad regex": {`exclude: ["kube-.*"]`, `exclude: ["kube-(.*"]`,
			`config.yaml:21: sources[0].kubernetes.namespaces.exclude[0]: invalid regular expression "kube-(.*": missing closing ): ` + "`^(?:kube-(.*)$`"},
		"bad event type": {"events: [create, error]", "events: [create, crash]",
			`config.yaml:24: sources[0].kubernetes.resources[0].events[1]: unknown event type "crash" (known: create, update, delete, error)`},
		"bad resource": {"type: v1/pods", "type: pods",
			`config.yaml:23: sources[0].kubernetes.resources[0].type: resource "pods" must be [group/]version/resource`},
		"bad label selector": {"labels: app=web", "labels: app==web,,",
			`config.yaml:25: sources[0].kubernetes.resources[0].labels: invalid label selector "app==web,,"`},
		"wrong type": {"      verbs: [get, describe]", "      verbs: get",
			`config.yaml:29: executors[0].policy.verbs: expected a list, got "get"`},
		"bad duration": {"      verbs: [get, describe]", "      verbs: [get]\n      timeout: 30 seconds",
			`config.yaml:30: executors[0].policy.timeout: invalid duration "30 seconds" (use a value like 30s or 2m)`},
		"inline secret": {"${TEST_BOT_TOKEN}", "xoxb-inline",
			`config.yaml:7: platforms[0].settings.botToken: inline secret values are not allowed`},
		"unset secret env": {"${TEST_BOT_TOKEN}", "${TEST_UNSET_VARIABLE}",
			`config.yaml:7: platforms[0].settings.botToken: environment variable TEST_UNSET_VARIABLE is not set`},
		"missing cluster name": {"  name: dev\n", "  kubeconfig: /x\n",
			`config.yaml:2: cluster.name: is required`},
		"duplicate names": {"  - name: ops\n    type: slack\n", "  - name: ops\n    type: log\n  - name: ops\n    type: slack\n",
			`config.yaml:6: platforms[1].name: duplicate name "ops" (also platforms[0])`},
		"bad listen address": {"cluster:\n", "http:\n  listen: localhost\ncluster:\n",
			`config.yaml:2: http.listen: "localhost" is not a host:port address`},
		"delivery deadline too short": {"cluster:\n", "delivery:\n  deadline: 10ms\ncluster:\n",
			`config.yaml:2: delivery.deadline: must be at least 1s, got 10ms`},
		"default namespace not allowed": {"      namespaces: [default]", "      namespaces: [default]\n      defaultNamespace: prod",
			`config.yaml:31: executors[0].policy.defaultNamespace: "prod" is not among the allowed namespaces (default)`},
		"bad alias": {"  k: kubectl", "  K!: kubectl",
			`config.yaml:32: aliases.K!: alias "K!" must be lower case letters, digits and dashes`},
		"syntax error": {"channels:\n", "channels:\n\t- bad\n",
			`config.yaml:9: found character that cannot start any token`},
		"unknown notify channel": {"aliases:\n", "reload:\n  notifyChannel: admins\naliases:\n",
			`config.yaml:32: reload.notifyChannel: unknown channel "admins" (known: alerts)`},
		"source block mismatch": {"    type: kubernetes\n", "    type: alertmanager\n",
			`config.yaml:20: sources[0].kubernetes: is set, but the source type is "alertmanager"`},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, valid, tc.replace, "test case does not apply")
			c, err := parse(t, strings.Replace(valid, tc.replace, tc.with, 1))
			if err == nil {
				// Secrets live in settings blocks, which their platform decodes.
				var s struct {
					BotToken Secret `yaml:"botToken"`
				}
				err = DecodeStrict(c.Platforms[0].Settings, &s)
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	bad := strings.NewReplacer("executors: [kubectl]", "executors: [kubctl]", "sources: [pods]", "sources: [pod]",
		"platform: ops", "platform: opz").Replace(valid)
	_, err := parse(t, bad)
	require.Len(t, Errors(err), 3, "%v", err)
}

func TestMergeInOrder(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	override := `cluster:
  name: prod
log:
  level: debug
aliases:
  k: null
  kg: kubectl get
executors:
  - type: kubectl
    policy:
      verbs: [get]
      namespaces: [default]
      typo: 1
`
	_, err := parse(t, valid, override)
	require.EqualError(t, err, `override.yaml:13: executors[0].policy.typo: unknown field "typo" (known: verbs, resources, namespaces, defaultNamespace, raw, timeout, maxOutputBytes, confirm)`)

	c, err := parse(t, valid, strings.Replace(override, "      typo: 1\n", "", 1))
	require.NoError(t, err)
	require.Equal(t, "prod", c.Cluster.Name, "later files win")
	require.Equal(t, "debug", c.Log.Level)
	require.Equal(t, map[string]string{"kg": "kubectl get"}, c.Aliases, "null removes a key, maps merge")
	require.Equal(t, []string{"get"}, c.Executors[0].Policy.Verbs, "lists are replaced")
	require.Equal(t, "alerts", c.Channels[0].Name, "untouched keys stay")
	require.Equal(t, []string{"config.yaml", "override.yaml"}, c.Files)
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("file-secret\n"), 0o600))
	path := filepath.Join(dir, "kubechat.yaml")
	cfg := strings.Replace(valid, "${TEST_BOT_TOKEN}", "{fromFile: "+tokenFile+"}", 1)
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	c, err := Load(known, path)
	require.NoError(t, err)
	var s struct {
		BotToken Secret `yaml:"botToken"`
	}
	require.NoError(t, DecodeStrict(c.Platforms[0].Settings, &s))
	require.Equal(t, "file-secret", s.BotToken.Reveal())

	_, err = Load(known, filepath.Join(dir, "missing.yaml"))
	require.ErrorContains(t, err, "missing.yaml: no such file or directory")
	_, err = Load(known)
	require.EqualError(t, err, "load config: no file given")

	empty := filepath.Join(dir, "empty.yaml")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = Load(known, empty)
	require.ErrorContains(t, err, "the config is empty")
}

func TestSettingsErrorsArePositioned(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	c, err := parse(t, valid)
	require.NoError(t, err)
	var s struct {
		AppToken Secret `yaml:"appToken"`
	}
	err = DecodeStrict(c.Platforms[0].Settings, &s)
	require.EqualError(t, err, `config.yaml:7: platforms[0].settings.botToken: unknown field "botToken" (known: appToken)`)
}

func TestSecretNeverPrints(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "xoxb-do-not-show")
	c, err := parse(t, valid)
	require.NoError(t, err)
	var s struct {
		BotToken Secret `yaml:"botToken"`
	}
	require.NoError(t, DecodeStrict(c.Platforms[0].Settings, &s))
	out, err := c.Redacted()
	require.NoError(t, err)
	require.NotContains(t, string(out), "xoxb-do-not-show")
	require.NotContains(t, string(out), "TEST_BOT_TOKEN", "not even the variable name")
	require.Contains(t, string(out), "botToken: '***'")
	for _, formatted := range []string{s.BotToken.String(), s.BotToken.GoString(), s.BotToken.LogValue().String()} {
		require.Equal(t, Redacted, formatted)
	}
	b, err := s.BotToken.MarshalJSON()
	require.NoError(t, err)
	require.Equal(t, `"***"`, string(b))
}

func TestParseGVR(t *testing.T) {
	gvr, err := ParseGVR("apps/v1/deployments")
	require.NoError(t, err)
	require.Equal(t, "apps", gvr.Group)
	gvr, err = ParseGVR("v1/pods")
	require.NoError(t, err)
	require.Equal(t, "pods", gvr.Resource)
	for _, bad := range []string{"", "pods", "a/b/c/d", "apps/1/deployments", "v1/Pods", "Apps_x/v1/x"} {
		_, err := ParseGVR(bad)
		require.Error(t, err, bad)
	}
}

func BenchmarkParse(b *testing.B) {
	b.Setenv("TEST_BOT_TOKEN", "x")
	f := File{Name: "config.yaml", Data: []byte(valid)}
	for b.Loop() {
		if _, err := Parse(known, f); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIdentityRules(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	for with, want := range map[string]string{
		"      serviceAccount: kubechat":                  `channels[0].identity.serviceAccount: "kubechat" is not namespace/name`,
		"      user: system:admin":                        `channels[0].identity.user: "system:admin" is a system identity`,
		"      user: ops\n      groups: [system:masters]": `channels[0].identity.groups[0]: system:masters bypasses RBAC`,
		"      groups: [ops]":                             `channels[0].identity: needs serviceAccount (namespace/name) or user`,
		"      serviceAccount: a/b\n      user: c":        `channels[0].identity: set either serviceAccount or user/groups, not both`,
	} {
		_, err := parse(t, strings.Replace(valid, "      serviceAccount: kubechat/ops", with, 1))
		require.ErrorContains(t, err, want)
	}
	_, err := parse(t, strings.Replace(valid, "    identity:\n      serviceAccount: kubechat/ops\n", "", 1))
	require.ErrorContains(t, err, "config.yaml:9: channels[0].identity: is required when executors that reach the cluster are bound (")

	users := valid + "users:\n  - platform: ops\n    id: U1\n    admin: true\n  - platform: ops\n    id: U1\n  - platform: nope\n    id: U2\n"
	_, err = parse(t, users)
	require.ErrorContains(t, err, `users[1].id: user "U1" on "ops" is mapped twice (also users[0])`)
	require.ErrorContains(t, err, `users[2].platform: unknown platform "nope" (known: ops)`)
}

func TestResourceFilterErrors(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	for with, want := range map[string]string{
		"          annotations: a==b,,":   `sources[0].kubernetes.resources[0].annotations: invalid selector "a==b,,"`,
		"          message: \"(\"":        `sources[0].kubernetes.resources[0].message: invalid regular expression "("`,
		"          fields: [spec..x]":     `sources[0].kubernetes.resources[0].fields[0]: field path "spec..x": "" is not a field name`,
		"          fields: [\"a[x]\"]":    `fields[0]: field path "a[x]": "a[x]" is not a field name with optional [index]`,
		"          reasons: [BackOff, 1]": ``,
	} {
		c := strings.Replace(valid, "          labels: app=web\n", "          labels: app=web\n"+with+"\n", 1)
		_, err := parse(t, c)
		if want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, want)
	}
	p, err := ParseFieldPath(".spec.template.spec.containers[0].image")
	require.NoError(t, err)
	require.Equal(t, "spec.template.spec.containers[0].image", p.String())
	v, ok := p.Get(map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"image": "x"}}}}}})
	require.True(t, ok)
	require.Equal(t, "x", v)
}

func TestCheckHTTPURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080/x", "https://chat.example.com"} {
		require.NoError(t, CheckHTTPURL("settings.url", ok))
	}
	for _, bad := range []string{"", "chat.example.com", "ftp://x", "http://", "https:///path", "http://[::1"} {
		require.EqualError(t, CheckHTTPURL("settings.url", bad), fmt.Sprintf("settings.url: %q is not an http(s) URL", bad))
	}
}

func TestAlertingConfigErrors(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "xoxb-secret-value")
	t.Setenv("TEST_AM_TOKEN", "am-token")
	const am = "\n  - name: am\n    type: alertmanager\n    alertmanager:\n"
	for name, tc := range map[string]struct {
		replace, with string
		want          string
	}{
		"alertmanager without auth": {"sources:\n", "sources:" + am + "      basicAuth: null\n",
			`sources[0].alertmanager: needs bearerToken or basicAuth: the webhook receiver never runs unauthenticated`},
		"alertmanager with both": {"sources:\n", "sources:" + am + "      bearerToken: ${TEST_AM_TOKEN}\n      basicAuth:\n        username: am\n        password: ${TEST_AM_TOKEN}\n",
			`sources[0].alertmanager: set bearerToken or basicAuth, not both`},
		"basic auth without password": {"sources:\n", "sources:" + am + "      basicAuth: {username: am}\n",
			`sources[0].alertmanager.basicAuth.password: is required`},
		"bad matcher": {"      sources: [pods]\n", "      sources: [pods]\n      matchers: ['severity=\"critical\"', 'team=~\"(web\"']\n",
			`config.yaml:13: channels[0].bindings.matchers[1]: invalid label matcher "team=~\"(web\""`},
		"bad default cluster": {"    platform: ops\n", "    platform: ops\n    defaultCluster: Prod_1\n",
			`channels[0].defaultCluster: "Prod_1" is not a valid cluster name`},
		"bad action placeholder": {"aliases:\n", "actions:\n  - name: logs\n    source: pods\n    command: kubectl logs {pod}\naliases:\n",
			`actions[0].command: unknown placeholder {pod}`},
		"action kind that is no kind": {"aliases:\n", "actions:\n  - name: logs\n    source: pods\n    kinds: [Pod, 'apps/Deployment']\n    command: kubectl logs {name}\naliases:\n",
			`actions[0].kinds[1]: "apps/Deployment" is not a Kubernetes kind`},
		"action command with shell syntax": {"aliases:\n", "actions:\n  - name: logs\n    source: pods\n    command: kubectl logs {name} && rm\naliases:\n",
			`actions[0].command: syntax error at column`},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, valid, tc.replace, "test case does not apply")
			_, err := parse(t, strings.Replace(valid, tc.replace, tc.with, 1))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := parse(t, strings.Replace(valid, "sources:\n", "sources:"+am+"      bearerToken: ${TEST_AM_TOKEN}\n", 1))
	require.NoError(t, err)
}

// TestClusterFreeExecutorsNeedNoIdentity: a channel bound only to
// executors of cluster-free types (silence, explain) needs no identity;
// bound to any other, or to a type not known to be cluster-free, it does.
func TestClusterFreeExecutorsNeedNoIdentity(t *testing.T) {
	const text = `cluster:
  name: dev
platforms:
  - name: chat
    type: log
channels:
  - name: ops
    platform: chat
    bindings:
      executors: [silence, explain]
executors:
  - name: silence
    type: silence
  - name: explain
    type: explain
  - name: kubectl-read
    type: kubectl
`
	known := Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"silence", "explain", "kubectl"}, ClusterFreeTypes: []string{"explain", "silence"}}
	_, err := Parse(known, File{Name: "c.yaml", Data: []byte(text)})
	require.NoError(t, err)
	_, err = Parse(known, File{Name: "c.yaml", Data: []byte(strings.Replace(text, "[silence, explain]", "[silence, kubectl-read]", 1))})
	require.ErrorContains(t, err, "c.yaml:7: channels[0].identity: is required when executors that reach the cluster are bound (kubectl-read)")
	known.ClusterFreeTypes = nil
	_, err = Parse(known, File{Name: "c.yaml", Data: []byte(text)})
	require.ErrorContains(t, err, "are bound (silence, explain)", "fail closed: a type not known to be cluster-free needs an identity")
}

func TestGitHubPollConfigErrors(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "xoxb-secret-value")
	const gh = "\n  - name: gh\n    type: github\n    github:\n"
	for name, tc := range map[string]struct {
		with, want string
	}{
		"neither webhook nor poll": {"      api: {baseURL: https://ghe.example.com/api/v3/}\n",
			`sources[0].github.webhookSecret: is required unless the source polls (github.poll)`},
		"interval too short": {"      poll: {interval: 5s, repositories: [acme/fleet]}\n",
			`sources[0].github.poll.interval: must be from 10s to 1h0m0s (unset: 1m0s), got 5s`},
		"interval too long": {"      poll: {interval: 2h, repositories: [acme/fleet]}\n",
			`sources[0].github.poll.interval: must be from 10s to 1h0m0s (unset: 1m0s), got 2h0m0s`},
		"no repositories": {"      poll: {interval: 1m}\n",
			`sources[0].github.poll.repositories: list the repositories to poll, as owner/name`},
		"not owner/name": {"      poll: {repositories: [https://github.com/acme/fleet]}\n",
			`sources[0].github.poll.repositories[0]: "https://github.com/acme/fleet" is not owner/name`},
		"listed twice": {"      poll: {repositories: [acme/fleet, Acme/Fleet]}\n",
			`sources[0].github.poll.repositories[1]: "Acme/Fleet" is listed twice (also repositories[0])`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, strings.Replace(valid, "sources:\n", "sources:"+gh+tc.with, 1))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := parse(t, strings.Replace(valid, "sources:\n", "sources:"+gh+"      poll: {repositories: [acme/fleet]}\n", 1))
	require.NoError(t, err, "polling needs no webhook secret")
}
