package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubechat/kubechat/internal/app"
)

func checkConfigCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "check-config FILE... | --config FILE...",
		Short: "Validate config files offline",
		Long: `Validate config files offline, merged in order as run merges them: decode
them strictly, apply defaults, validate every field, and build every
platform and executor without connecting to anything. Every problem is
reported at once, with its file, line and field path. What loads but is
most likely a mistake (no platform, no source: a file cut short) is
printed as a warning, and the config is still valid.`,
		Example: `  kubechat check-config kubechat.yaml
  kubechat check-config --config base.yaml --config prod.yaml`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 && len(files) == 0 {
				return usageError{errors.New("give at least one config file")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := append(append([]string{}, files...), args...)
			if err := app.Check(paths...); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%v\n", err)
				return exitCode(1)
			}
			// What loads but is most likely not meant (no platform, no
			// source): said, not refused. Check loaded these files just now.
			if cfg, err := app.Load(paths...); err == nil {
				for _, w := range cfg.Warnings() {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", w)
				}
			}
			return writeString(cmd.OutOrStdout(), fmt.Sprintf("ok: %d file(s) valid\n", len(paths)))
		},
	}
	configFlag(cmd.Flags(), &files, "config file; repeat to merge several in order (the same as naming them as arguments)")
	return cmd
}
