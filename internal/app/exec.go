package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins"
)

// ExecOptions are the flags of "kubechat exec".
type ExecOptions struct {
	// Namespace is the command's default namespace.
	Namespace string
	// MaxOutputBytes caps the output (default config.DefaultMaxOutputBytes).
	MaxOutputBytes int
	// Settings is the executor's settings block, as YAML.
	Settings string
	// Kubeconfig is used outside a pod (default: in-cluster, else $KUBECONFIG).
	Kubeconfig string
}

// Exec is "kubechat exec": it runs one command of an executor type in this
// process, as the connection's own identity (in a command pod, the pod's
// ServiceAccount; nothing is impersonated), writes its output to stdout
// and its errors to stderr, and returns its exit code. argv is the
// executor type and the command's arguments, never parsed as kubechat's
// flags. The command is analyzed again before it runs: the agent's policy
// check is not the only gate against flags that change the connection.
func Exec(ctx context.Context, o ExecOptions, argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "kubechat exec: name an executor type after --")
		return 2
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = config.DefaultMaxOutputBytes
	}
	if err := execute(ctx, argv[0], argv[1:], o, stdout, stderr); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		fmt.Fprintf(stderr, "kubechat exec: %v\n", err)
		return 1
	}
	return 0
}

// exitCode carries a command's own non-zero exit code out of execute.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit code %d", int(c)) }

func execute(ctx context.Context, typ string, args []string, o ExecOptions, stdout, stderr io.Writer) error {
	t, ok := plugins.Executors[typ]
	if !ok || typ == "run" {
		known := []string{}
		for _, t := range Known().ExecutorTypes {
			if t != "run" {
				known = append(known, t)
			}
		}
		return fmt.Errorf("unknown executor type %q (known: %s)", typ, strings.Join(known, ", "))
	}
	raw, err := config.RawFromYAML(o.Settings)
	if err != nil {
		return fmt.Errorf("--settings: %w", err)
	}
	cfg, err := ClusterConfig(o.Kubeconfig, "")
	if err != nil {
		return err
	}
	ex, err := t.New(typ, raw, executor.Deps{Log: slog.New(slog.DiscardHandler), RESTConfig: cfg})
	if err != nil {
		return err
	}
	if _, err := ex.Analyze(ctx, args); err != nil {
		return err
	}
	res, err := ex.Execute(ctx, executor.Request{
		Args:           args,
		Namespace:      o.Namespace,
		Identity:       executor.Identity{Own: true},
		MaxOutputBytes: o.MaxOutputBytes,
	})
	if err != nil {
		return err
	}
	_, _ = io.WriteString(stdout, res.Output)
	_, _ = io.WriteString(stderr, res.Errors)
	if res.Truncated {
		fmt.Fprintf(stderr, "\n(output stopped at %d bytes)\n", o.MaxOutputBytes)
	}
	if res.ExitCode != 0 {
		return exitCode(res.ExitCode)
	}
	return nil
}
