package kubectl

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/kubectl/pkg/cmd/annotate"
	"k8s.io/kubectl/pkg/cmd/apiresources"
	"k8s.io/kubectl/pkg/cmd/apply"
	"k8s.io/kubectl/pkg/cmd/attach"
	"k8s.io/kubectl/pkg/cmd/auth"
	"k8s.io/kubectl/pkg/cmd/autoscale"
	"k8s.io/kubectl/pkg/cmd/certificates"
	"k8s.io/kubectl/pkg/cmd/clusterinfo"
	"k8s.io/kubectl/pkg/cmd/completion"
	cmdconfig "k8s.io/kubectl/pkg/cmd/config"
	"k8s.io/kubectl/pkg/cmd/cp"
	"k8s.io/kubectl/pkg/cmd/create"
	"k8s.io/kubectl/pkg/cmd/debug"
	"k8s.io/kubectl/pkg/cmd/delete"
	"k8s.io/kubectl/pkg/cmd/describe"
	"k8s.io/kubectl/pkg/cmd/diff"
	"k8s.io/kubectl/pkg/cmd/drain"
	"k8s.io/kubectl/pkg/cmd/edit"
	"k8s.io/kubectl/pkg/cmd/events"
	cmdexec "k8s.io/kubectl/pkg/cmd/exec"
	"k8s.io/kubectl/pkg/cmd/explain"
	"k8s.io/kubectl/pkg/cmd/expose"
	"k8s.io/kubectl/pkg/cmd/get"
	"k8s.io/kubectl/pkg/cmd/label"
	"k8s.io/kubectl/pkg/cmd/logs"
	"k8s.io/kubectl/pkg/cmd/options"
	"k8s.io/kubectl/pkg/cmd/patch"
	"k8s.io/kubectl/pkg/cmd/plugin"
	"k8s.io/kubectl/pkg/cmd/portforward"
	"k8s.io/kubectl/pkg/cmd/proxy"
	"k8s.io/kubectl/pkg/cmd/replace"
	"k8s.io/kubectl/pkg/cmd/rollout"
	"k8s.io/kubectl/pkg/cmd/run"
	"k8s.io/kubectl/pkg/cmd/scale"
	"k8s.io/kubectl/pkg/cmd/set"
	"k8s.io/kubectl/pkg/cmd/taint"
	"k8s.io/kubectl/pkg/cmd/top"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
	"k8s.io/kubectl/pkg/cmd/version"
	"k8s.io/kubectl/pkg/cmd/wait"
	"k8s.io/kubectl/pkg/util/i18n"
	"k8s.io/kubectl/pkg/util/templates"
)

// kubectl's own root (k8s.io/kubectl/pkg/cmd.NewKubectlCommand) writes
// process-wide state each time it is built: its --profile flags are bound
// to package variables, it points shell completion at the newest factory,
// and its pre-run hook sets the process's warning handler and starts
// profiles. Two commands could not build their trees at the same time.
// tree builds the same commands under a root of the executor's own, with
// nothing shared: every subcommand gets this command's factory and
// streams, the --profile flags are bound to this tree (and refused by the
// allow-list), and there are no hooks but the executor's. Plugins and
// kuberc preferences are left out, and kustomize (whose flags are bound to
// its package's variables too) is a stand-in, as the executor refuses them
// anyway.
// TestTreeIsKubectls holds the two trees equal, command by command and
// flag by flag.
func tree(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl",
		Short: i18n.T("kubectl controls the Kubernetes cluster manager"),
		Long: templates.LongDesc(`
      kubectl controls the Kubernetes cluster manager.

      Find more information at:
            https://kubernetes.io/docs/reference/kubectl/`),
		Run: func(c *cobra.Command, _ []string) { _ = c.Help() },
	}
	root.SetGlobalNormalizationFunc(cliflag.WarnWordSepNormalizeFunc)
	pf := root.PersistentFlags()
	var profile, profileOutput string
	pf.StringVar(&profile, "profile", "none", "Name of profile to capture. One of (none|cpu|heap|goroutine|threadcreate|block|mutex|trace)")
	pf.StringVar(&profileOutput, "profile-output", "profile.pprof", "Name of the file to write the profile to")
	pf.Bool("warnings-as-errors", false, "Treat warnings received from the server as errors and exit with a non-zero exit code")
	flags.AddFlags(pf)
	matchVersion := cmdutil.NewMatchVersionFlags(flags)
	matchVersion.AddFlags(pf)
	f := cmdutil.NewFactory(matchVersion)

	groups := templates.CommandGroups{
		{Message: "Basic Commands (Beginner):", Commands: []*cobra.Command{
			create.NewCmdCreate(f, streams),
			expose.NewCmdExposeService(f, streams),
			run.NewCmdRun(f, streams),
			set.NewCmdSet(f, streams),
		}},
		{Message: "Basic Commands (Intermediate):", Commands: []*cobra.Command{
			explain.NewCmdExplain("kubectl", f, streams),
			get.NewCmdGet("kubectl", f, streams),
			edit.NewCmdEdit(f, streams),
			delete.NewCmdDelete(f, streams),
		}},
		{Message: "Deploy Commands:", Commands: []*cobra.Command{
			rollout.NewCmdRollout("kubectl", f, streams),
			scale.NewCmdScale(f, streams),
			autoscale.NewCmdAutoscale(f, streams),
		}},
		{Message: "Cluster Management Commands:", Commands: []*cobra.Command{
			certificates.NewCmdCertificate(f, streams),
			clusterinfo.NewCmdClusterInfo(f, streams),
			top.NewCmdTop(f, streams),
			drain.NewCmdCordon(f, streams),
			drain.NewCmdUncordon(f, streams),
			drain.NewCmdDrain(f, streams),
			taint.NewCmdTaint(f, streams),
		}},
		{Message: "Troubleshooting and Debugging Commands:", Commands: []*cobra.Command{
			describe.NewCmdDescribe("kubectl", f, streams),
			logs.NewCmdLogs(f, streams),
			attach.NewCmdAttach(f, streams),
			cmdexec.NewCmdExec(f, streams),
			portforward.NewCmdPortForward(f, streams),
			proxy.NewCmdProxy(f, streams),
			cp.NewCmdCp(f, streams),
			auth.NewCmdAuth(f, streams),
			debug.NewCmdDebug(f, streams),
			events.NewCmdEvents(f, streams),
		}},
		{Message: "Advanced Commands:", Commands: []*cobra.Command{
			diff.NewCmdDiff(f, streams),
			apply.NewCmdApply("kubectl", f, streams),
			patch.NewCmdPatch(f, streams),
			replace.NewCmdReplace(f, streams),
			wait.NewCmdWait(f, streams),
			refusedStandIn("kustomize <dir>", "Build a kustomization target from a directory or URL"),
		}},
		{Message: "Settings Commands:", Commands: []*cobra.Command{
			label.NewCmdLabel(f, streams),
			annotate.NewCmdAnnotate("kubectl", f, streams),
			completion.NewCmdCompletion(streams.Out, ""),
		}},
	}
	groups.Add(root)
	// kubectl hides "alpha" when a build has no alpha commands, as this
	// one has none.
	templates.ActsAsRootCommand(root, []string{"options", "alpha"}, groups...)
	root.AddCommand(
		&cobra.Command{Use: "alpha", Short: i18n.T("Commands for features in alpha")},
		cmdconfig.NewCmdConfig(f, clientcmd.NewDefaultPathOptions(), streams),
		plugin.NewCmdPlugin(streams),
		version.NewCmdVersion(f, streams),
		apiresources.NewCmdAPIVersions(f, streams),
		apiresources.NewCmdAPIResources(f, streams),
		options.NewCmdOptions(streams.Out),
	)
	root.SetGlobalNormalizationFunc(cliflag.WordSepNormalizeFunc)
	return root
}

// refusedStandIn is a command kept in the tree only to be found and refused
// by name (refusedCommands); it has no flags and runs nothing.
func refusedStandIn(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: i18n.T(short), DisableFlagParsing: true,
		RunE: func(c *cobra.Command, _ []string) error {
			return fmt.Errorf("kubectl %s is not available in chat", c.Name())
		}}
}
