package command

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var aliases = Aliases{"k": {"kubectl"}, "kgp": {"kubectl", "get", "pods"}}

func TestParse(t *testing.T) {
	for in, want := range map[string]struct {
		cluster, name string
		args          []string
		filter        string
		invert        bool
	}{
		"kubectl get pods":                                       {name: "kubectl", args: []string{"get", "pods"}},
		"  kubectl   get\tpods  ":                                {name: "kubectl", args: []string{"get", "pods"}},
		"k get po -n kube-system":                                {name: "kubectl", args: []string{"get", "po", "-n", "kube-system"}},
		"kgp -A":                                                 {name: "kubectl", args: []string{"get", "pods", "-A"}},
		"'k' get pods":                                           {name: "k", args: []string{"get", "pods"}},
		"--cluster prod kubectl get nodes":                       {cluster: "prod", name: "kubectl", args: []string{"get", "nodes"}},
		"--cluster=prod ping":                                    {cluster: "prod", name: "ping"},
		"--filter web kubectl get pods":                          {name: "kubectl", args: []string{"get", "pods"}, filter: "web"},
		"kubectl get pods | grep web":                            {name: "kubectl", args: []string{"get", "pods"}, filter: "web"},
		"kubectl get pods | grep -v Running":                     {name: "kubectl", args: []string{"get", "pods"}, filter: "Running", invert: true},
		"kubectl get pods | grep -i 'web|api'":                   {name: "kubectl", args: []string{"get", "pods"}, filter: "(?i)web|api"},
		`kubectl get pods -l "app in (a,b)"`:                     {name: "kubectl", args: []string{"get", "pods", "-l", "app in (a,b)"}},
		"kubectl get pods -l \u201capp=web\u201d":                {name: "kubectl", args: []string{"get", "pods", "-l", "app=web"}},
		"kubectl get pods -l \u2018app=web\u2019":                {name: "kubectl", args: []string{"get", "pods", "-l", "app=web"}},
		`kubectl get po -o jsonpath='{.items[*].metadata.name}'`: {name: "kubectl", args: []string{"get", "po", "-o", "jsonpath={.items[*].metadata.name}"}},
		`kubectl get cm -o 'jsonpath={.data.a;b}'`:               {name: "kubectl", args: []string{"get", "cm", "-o", "jsonpath={.data.a;b}"}},
		`echo a\b`:                  {name: "echo", args: []string{`a\b`}},
		`kubectl get pods ""`:       {name: "kubectl", args: []string{"get", "pods", ""}},
		`--filter '^web-(a|b)$' ls`: {name: "ls", filter: "^web-(a|b)$"},
	} {
		t.Run(in, func(t *testing.T) {
			c, err := Parse(in, aliases)
			require.NoError(t, err)
			require.Equal(t, want.cluster, c.Cluster)
			require.Equal(t, want.name, c.Name)
			require.Empty(t, cmp.Diff(want.args, c.Args))
			if want.filter == "" {
				require.Nil(t, c.Filter)
			} else {
				require.Equal(t, want.filter, c.Filter.String())
			}
			require.Equal(t, want.invert, c.InvertFilter)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     `syntax error: no command given (try "help")`,
		"--cluster":                            `syntax error at column 1: --cluster needs a value`,
		"kubectl get pods; rm -rf /":           `syntax error at column 17: ";" is shell syntax, and kubechat runs no shell: send one command per message`,
		"kubectl get pods && kubectl delete":   `syntax error at column 18: "&&" is shell syntax`,
		"kubectl get pods | sh":                `syntax error at column 18: "|" is shell syntax; the only pipe kubechat accepts is a final "| grep PATTERN"`,
		"kubectl get pods | grep a | wc":       `syntax error at column 27: "| grep" takes exactly one pattern and must end the command`,
		"kubectl get $(whoami)":                `syntax error at column 13: "$(" is command substitution, and kubechat runs no shell`,
		"kubectl get `id`":                     "syntax error at column 13: \"`\" is command substitution",
		`kubectl get "$(id)"`:                  `syntax error at column 14: "$(" is command substitution`,
		"kubectl get pods > /tmp/x":            `syntax error at column 18: ">" is a redirection, and kubechat runs no shell`,
		"kubectl get pods 2>&1":                `syntax error at column 18: "2>" is a redirection`,
		"kubectl get ${HOME}":                  `syntax error at column 13: "${" is variable expansion`,
		"kubectl get 'pods":                    `syntax error at column 13: the quote ' opened here is never closed`,
		"kubectl logs x &":                     `syntax error at column 16: "&" is shell syntax`,
		"kubectl get pods | grep -E x":         `syntax error at column 25: grep option "-E" is not supported (only -i and -v)`,
		"--filter '(' kubectl get pods":        `syntax error at column 1: invalid filter pattern "(": missing closing ): ` + "`(`",
		"--filter a kubectl get pods | grep b": `syntax error at column 1: give one filter: --filter or | grep, not both`,
		"kubectl get pods | grep":              `syntax error at column 18: "| grep" takes exactly one pattern`,
		"\xff":                                 `syntax error: the command is not valid UTF-8`,
	} {
		t.Run(in, func(t *testing.T) {
			_, err := Parse(in, aliases)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrSyntax))
			require.True(t, strings.HasPrefix(err.Error(), want), "got %q\nwant prefix %q", err, want)
		})
	}
	_, err := Parse(strings.Repeat("a", MaxLength+1), nil)
	require.ErrorContains(t, err, "the limit is 4096")
}

// InjectionCorpus holds attempts to reach a shell; each must be refused.
var InjectionCorpus = []string{
	"kubectl get pods; id",
	"kubectl get pods;id",
	"kubectl get pods && id",
	"kubectl get pods || id",
	"kubectl get pods | sh",
	"kubectl get pods | bash -c id",
	"kubectl get pods |sh",
	"kubectl get pods `id`",
	"kubectl get pods $(id)",
	"kubectl get pods \"$(id)\"",
	"kubectl get pods \"`id`\"",
	"kubectl get pods ${IFS}id",
	"kubectl get pods > /etc/passwd",
	"kubectl get pods >> /tmp/x",
	"kubectl get pods < /etc/passwd",
	"kubectl get pods << EOF",
	"kubectl get pods 2> /dev/null",
	"kubectl get pods &> /dev/null",
	"kubectl get pods & id",
	"kubectl get pods &",
	"kubectl get pods\u201d; id",
	"kubectl get pods ; id",
	"kubectl get pods | grep x | sh",
	"kubectl get pods | grep x; id",
	"kubectl get pods | grep $(id)",
	"kubectl get pods | grep `id`",
	"kubectl exec -it x -- sh -c 'id'; id",
	"kubectl get pods\n; id",
	"kubectl get pods\t&&\tid",
	"ping; kubectl delete ns prod",
	"--cluster prod;id kubectl get pods",
	"kubectl get 'pods'; id",
}

func TestInjectionCorpusIsRefused(t *testing.T) {
	require.GreaterOrEqual(t, len(InjectionCorpus), 30)
	for _, in := range InjectionCorpus {
		_, err := Parse(in, aliases)
		require.ErrorIs(t, err, ErrSyntax, "accepted: %q", in)
	}
}

func TestStringRoundTrips(t *testing.T) {
	for _, in := range []string{
		"--cluster prod kubectl get pods -l 'app in (a,b)' | grep -v Running",
		"kubectl get pods -o 'jsonpath={.items[*].metadata.name}'",
		"helm list -A",
	} {
		c, err := Parse(in, nil)
		require.NoError(t, err)
		again, err := Parse(c.String(), nil)
		require.NoError(t, err, c.String())
		require.Equal(t, c.Argv(), again.Argv())
		require.Equal(t, c.Cluster, again.Cluster)
	}
}

func TestParseAliases(t *testing.T) {
	a, err := ParseAliases(map[string]string{"kgp": "kubectl get pods", "kd": "kubectl describe"})
	require.NoError(t, err)
	require.Equal(t, []string{"kubectl", "get", "pods"}, a["kgp"])
	_, err = ParseAliases(map[string]string{"bad": "kubectl get pods; id"})
	require.ErrorContains(t, err, `alias "bad": syntax error at column 17`)
}
