package alerts

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/executor"
)

// TestAnalyze: each command names its verb for the policy, explain's -n
// names its namespace, and bad syntax is refused before anything runs.
func TestAnalyze(t *testing.T) {
	s, e := &Silence{}, &Explain{}
	for args, verb := range map[string]string{
		`add name="x" --for 2h`: "add", `add name="x" --until-resolved --comment=why`: "add", "list": "list", "expire ab12cd34": "expire",
	} {
		a, err := s.Analyze(t.Context(), split(args))
		require.NoError(t, err, args)
		require.Equal(t, executor.Analysis{Verb: verb}, a)
	}
	for args, want := range map[string]string{
		"":                                       "usage: silence add",
		`add name="x"`:                           "give either --for DURATION or --until-resolved",
		`add name="x" --for 2h --until-resolved`: "give either --for DURATION or --until-resolved",
		`add name="x" --for soon`:                `--for "soon": give a duration`,
		`add name="x" --for 100d`:                "a silence lasts at most 90d",
		`add --for 2h`:                           "at least one matcher",
		`add name="x" --for 2h --force`:          `unknown flag "--force"`,
		"list all":                               "takes no arguments",
		"mute x":                                 `unknown silence command "mute"`,
	} {
		_, err := s.Analyze(t.Context(), split(args))
		require.ErrorContains(t, err, want, args)
	}
	a, err := e.Analyze(t.Context(), []string{"pod/web-1", "-n", "web"})
	require.NoError(t, err)
	require.Equal(t, executor.Analysis{Verb: "explain", Namespaces: []string{"web"}}, a)
	for _, bad := range [][]string{{"pod"}, {"pod/a", "pod/b"}, {"pod/a", "-n"}, {"pod/a", "-A"}} {
		_, err := e.Analyze(t.Context(), bad)
		require.Error(t, err, "%q", bad)
	}
}

// split splits test command lines, which quote no spaces.
func split(s string) []string { return strings.Fields(s) }
