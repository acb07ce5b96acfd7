package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
)

func execCommand() *cobra.Command {
	var o app.ExecOptions
	cmd := &cobra.Command{
		Use:   "exec [flags] -- TYPE ARGS...",
		Short: "Run one command in-process as this process's own identity (in command pods)",
		Long: `Run one command of executor TYPE (kubectl, helm, flux) in-process as this
process's own Kubernetes identity (in a pod: its ServiceAccount; nothing is
impersonated), and exit with its exit code. The agent runs this in command
pods (isolation: pod). Everything after TYPE is the command's own argv:
it is never read as kubechat's flags.`,
		Example: `  kubechat exec --namespace web -- kubectl get pods
  kubechat exec --settings 'driver: configmap' -- helm list`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("name an executor type after --")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := app.Exec(cmd.Context(), o, args, cmd.OutOrStdout(), cmd.ErrOrStderr()); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	// Flags end at TYPE, even without "--": the rest is the command's.
	fs.SetInterspersed(false)
	fs.StringVar(&o.Namespace, "namespace", "", "default namespace of the command")
	fs.IntVar(&o.MaxOutputBytes, "max-output-bytes", config.DefaultMaxOutputBytes, "cap of the output")
	fs.StringVar(&o.Settings, "settings", "", "the executor's settings block (YAML)")
	kubeconfigFlag(fs, &o.Kubeconfig, "kubeconfig file, when not running in a pod (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
	return cmd
}
