// Command kubechat is the kubechat agent. See "kubechat help".
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/buildinfo"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/logging"
)

const usage = `kubechat: a ChatOps agent for Kubernetes

Usage:
  kubechat run [--config FILE]... [--kubeconfig FILE]   run the agent (default config: log alerts to stdout)
  kubechat check-config FILE...                         validate config files offline
  kubechat exec [flags] -- TYPE ARGS...                 run one command in-process as this pod's identity (command pods)
  kubechat version                                      print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runAgent(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "exec":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return app.Exec(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, buildinfo.String())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "kubechat: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

type files []string

func (f *files) String() string     { return fmt.Sprint(*f) }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func runAgent(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfgFiles files
	fs.Var(&cfgFiles, "config", "config file; repeat to merge several in order (default: the embedded config)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file, when not running in a pod (default: $KUBECONFIG or ~/.kube/config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg *config.Config
	var err error
	if len(cfgFiles) == 0 {
		cfg, err = config.Parse(app.Known(), config.File{Name: "default.yaml (embedded)", Data: configs.Default})
	} else {
		cfg, err = app.Load(cfgFiles...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kubechat: invalid config:\n%v\n", err)
		return 1
	}
	log, err := logging.New(stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "kubechat: %v\n", err)
		return 1
	}
	restCfg, err := app.ClusterConfig(*kubeconfig, cfg.Cluster.Kubeconfig)
	if err != nil {
		log.Error("no cluster connection", "err", err)
		return 1
	}
	a, err := app.New(cfg, log, app.Options{RESTConfig: restCfg})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

func checkConfig(paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "kubechat check-config: give at least one file")
		return 2
	}
	if err := app.Check(paths...); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d file(s) valid\n", len(paths))
	return 0
}
