// Package cli is the kubechat command line, on cobra: run, check-config,
// exec, rbac, version, completion and help. Every command spells a shared
// flag the same way (--config, --kubeconfig, --namespace), and every
// command has its own --help.
//
// Exit codes: 0 on success, 1 when a command fails, 2 for a usage error
// (an unknown command or flag, a missing argument), and for exec the exit
// code of the command it ran.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Run runs the command line args (without the program's name) and returns
// the process's exit code. ctx ends the command: the binary cancels it on
// SIGINT and SIGTERM.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := New(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var code exitCode
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v\n\n%s", cmd.CommandPath(), usage.err, cmd.UsageString())
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
		return 1
	}
}

// New returns the root command, writing to stdout and stderr.
func New(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubechat",
		Short: "A ChatOps agent for Kubernetes",
		Long: `kubechat is a ChatOps agent for Kubernetes: it watches the cluster, posts
alerts to chat channels and answers the commands typed there.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Suggest a command within two edits of a mistyped one.
		SuggestionsMinimumDistance: 2,
		// Without a command: the usage, on stderr, as a usage error.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("name a command")}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(runCommand(), hubCommand(), fleetCommand(), checkConfigCommand(), execCommand(), rbacCommand(), versionCommand(), probeCommand())
	return root
}

// exitCode is returned by a command that reported its own failure and
// exits with this code.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit code %d", int(c)) }

// usageError is a command line the command cannot run; Run prints it
// with the command's usage and exits with 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return usageError{errors.New(msg)}
}

// noArgs refuses positional arguments as a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// The flags several commands share, spelled once.

func configFlag(fs *pflag.FlagSet, files *[]string, usage string) {
	fs.StringArrayVar(files, "config", nil, usage)
}

func kubeconfigFlag(fs *pflag.FlagSet, path *string, usage string) {
	fs.StringVar(path, "kubeconfig", "", usage)
}

// writeString writes s, for commands whose output is their result.
func writeString(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
