package kubectl

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubechat/kubechat/internal/executor"
)

// TestTreeIsKubectls holds the executor's command tree equal to kubectl's
// own: the same commands, each with the same flags and defaults, so the
// allow-list (and TestEveryFlagIsClassified) judges what kubectl itself
// would parse. A command refused whole is only required to be there.
func TestTreeIsKubectls(t *testing.T) {
	t.Setenv(string(cmdutil.KubeRC), "false") // the executor never reads kuberc
	streams := genericiooptions.NewTestIOStreamsDiscard()
	cache := t.TempDir()
	theirs := kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{
		ConfigFlags: executor.ConfigFlags(nil, cache), IOStreams: streams, Arguments: []string{"kubectl"},
	})
	ours, _ := newCommand(streams, nil, cache, "")
	require.Equal(t, shape(theirs), shape(ours))
}

// shape lists every command path of a tree with its flags and their defaults.
func shape(root *cobra.Command) []string {
	var out []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		line := "kubectl " + verbOf(c) + ":"
		if _, refused := refusedCommands[verbOf(c)]; refused && !refusedBare[verbOf(c)] {
			out = append(out, line+" (refused)")
			return
		}
		c.InitDefaultHelpFlag()
		seen := map[string]bool{}
		add := func(f *pflag.Flag) { seen[f.Name+"="+f.DefValue] = true }
		c.Flags().VisitAll(add)
		c.InheritedFlags().VisitAll(add)
		fl := slices.Sorted(maps.Keys(seen))
		line += " " + strings.Join(fl, " ")
		out = append(out, line)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	sort.Strings(out)
	return out
}
