package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kubechat/kubechat/internal/buildinfo"
)

func versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version [-o text|json]",
		Short: "Print the version",
		Long: `Print the version, the VCS revision and the Go version the binary was built
with. As text, the first line is the version alone.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			switch output {
			case "text":
				return writeString(cmd.OutOrStdout(), text(info))
			case "json":
				b, err := json.MarshalIndent(info, "", "  ")
				if err != nil {
					return fmt.Errorf("encode version: %w", err)
				}
				return writeString(cmd.OutOrStdout(), string(b)+"\n")
			default:
				return usageError{fmt.Errorf("--output: unknown format %q (known: text, json)", output)}
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func text(i buildinfo.Info) string {
	var b strings.Builder
	fmt.Fprintln(&b, i.Version)
	if i.Revision != "" {
		rev := i.Revision
		if i.Modified {
			rev += " (modified)"
		}
		if i.RevisionTime != "" {
			rev += ", " + i.RevisionTime
		}
		fmt.Fprintf(&b, "revision: %s\n", rev)
	}
	fmt.Fprintf(&b, "go: %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}
