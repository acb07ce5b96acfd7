package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/rbac"
)

func rbacCommand() *cobra.Command {
	var files []string
	var o rbac.Options
	cmd := &cobra.Command{
		Use:   "rbac --config FILE... [--namespace NS] [--release NAME] [--service-account NAME]",
		Short: "Print the RBAC the agent needs for a config, as YAML",
		Long: `Print, as YAML documents for kubectl apply -f, the Roles, ClusterRoles and
bindings the agent's ServiceAccount needs to run with the config, and
nothing more: list and watch on the resources its sources watch,
impersonate on the identities of the commands it runs itself, pods in the
namespaces command pods run in, and its own ConfigMaps and Lease. The Helm
chart renders the same objects; this is for installing without it.

The objects are named as the chart names them for --release, and bound to
the ServiceAccount --service-account in --namespace.`,
		Example: `  kubechat rbac --config kubechat.yaml | kubectl apply -f -
  kubechat rbac --config kubechat.yaml --namespace ops --service-account kubechat-agent`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(files) == 0 {
				return usageError{errors.New("give the agent's config with --config FILE")}
			}
			return noArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.Load(files...)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "kubechat rbac: invalid config:\n%v\n", err)
				return exitCode(1)
			}
			objs, err := rbac.Objects(cfg, o)
			if err != nil {
				return fmt.Errorf("derive rbac: %w", err)
			}
			b, err := rbac.YAML(objs)
			if err != nil {
				return err
			}
			header := "# The RBAC of the kubechat agent for " + strings.Join(files, ", ") + ", from \"kubechat rbac\".\n"
			return writeString(cmd.OutOrStdout(), header+string(b))
		},
	}
	fs := cmd.Flags()
	configFlag(fs, &files, "config file; repeat to merge several in order")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace of the agent's ServiceAccount (default: the config's cluster.namespace)")
	fs.StringVar(&o.Release, "release", "kubechat", `installation name: objects are named "<release>-kubechat", or "<release>" if it contains "kubechat", as the Helm chart names them`)
	fs.StringVar(&o.ServiceAccount, "service-account", "", "the agent's ServiceAccount (default: the objects' name)")
	return cmd
}
