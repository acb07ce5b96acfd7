package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/plugins"
)

// ExecUsage documents "kubechat exec".
const ExecUsage = `kubechat exec [--namespace NS] [--max-output-bytes N] [--settings YAML] [--kubeconfig FILE] -- TYPE ARGS...
  Run one command of executor TYPE (kubectl, helm) in-process as this
  process's own Kubernetes identity (in a pod: its ServiceAccount), and exit
  with its exit code. The agent runs this in command pods (isolation: pod).`

// Exec is "kubechat exec": it runs one command of an executor type in this
// process, as the connection's own identity (in a command pod, the pod's
// ServiceAccount; nothing is impersonated), writes its output to stdout
// and its errors to stderr, and returns its exit code. The command is
// analyzed again before it runs: the agent's policy check is not the only
// gate against flags that change the connection.
func Exec(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("namespace", "", "default namespace of the command")
	maxOutput := fs.Int("max-output-bytes", config.DefaultMaxOutputBytes, "cap of the output")
	settings := fs.String("settings", "", "the executor's settings block (YAML)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file, when not running in a pod (default: in-cluster, else $KUBECONFIG)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "kubechat exec: name an executor type after --\n\n%s\n", ExecUsage)
		return 2
	}
	typ, cmdArgs := rest[0], rest[1:]
	if err := execute(ctx, typ, cmdArgs, *namespace, *maxOutput, *settings, *kubeconfig, stdout, stderr); err != nil {
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

func execute(ctx context.Context, typ string, args []string, namespace string, maxOutput int, settings, kubeconfig string, stdout, stderr io.Writer) error {
	factory, ok := plugins.Executors[typ]
	if !ok || typ == "run" {
		known := []string{}
		for _, t := range Known().ExecutorTypes {
			if t != "run" {
				known = append(known, t)
			}
		}
		return fmt.Errorf("unknown executor type %q (known: %s)", typ, strings.Join(known, ", "))
	}
	raw, err := config.RawFromYAML(settings)
	if err != nil {
		return fmt.Errorf("--settings: %w", err)
	}
	cfg, err := ClusterConfig(kubeconfig, "")
	if err != nil {
		return err
	}
	ex, err := factory(typ, raw, executor.Deps{Log: slog.New(slog.DiscardHandler), RESTConfig: cfg})
	if err != nil {
		return err
	}
	if _, err := ex.Analyze(ctx, args); err != nil {
		return err
	}
	res, err := ex.Execute(ctx, executor.Request{
		Args:           args,
		Namespace:      namespace,
		Identity:       executor.Identity{Own: true},
		MaxOutputBytes: maxOutput,
	})
	if err != nil {
		return err
	}
	_, _ = io.WriteString(stdout, res.Output)
	_, _ = io.WriteString(stderr, res.Errors)
	if res.Truncated {
		fmt.Fprintf(stderr, "\n(output stopped at %d bytes)\n", maxOutput)
	}
	if res.ExitCode != 0 {
		return exitCode(res.ExitCode)
	}
	return nil
}
