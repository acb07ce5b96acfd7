// Command local is "make run": it starts a throwaway control plane (etcd,
// kube-apiserver, controller-manager, scheduler, kwok nodes), runs the agent
// against it with the embedded default config, and creates a few demo
// workloads, one of them crash-looping, so that alerts show up in the log.
// Ctrl-C stops everything.
//
// With KUBECHAT_CONFIG set (one config file, or several separated by
// commas) and a kubeconfig present ($KUBECONFIG or ~/.kube/config), it runs
// the agent with that config against that cluster instead, starting nothing.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/logging"
	"github.com/kubechat/kubechat/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if paths := os.Getenv("KUBECHAT_CONFIG"); paths != "" {
		return runAgainstCluster(ctx, strings.Split(paths, ","))
	}
	cfg, err := config.Parse(app.Known(), config.File{Name: "configs/default.yaml", Data: configs.Default})
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	log.Info("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, 2 kwok nodes)")
	env, err := testenv.Start(ctx, testenv.Options{Nodes: 2})
	if err != nil {
		return err
	}
	defer env.Stop()
	log.Info("control plane ready", "kubeconfig", env.Kubeconfig(),
		"try", "KUBECONFIG="+env.Kubeconfig()+" kubectl get pods -A")

	// The agent keeps its state (open alerts, checkpoints) in this namespace.
	if err := env.CreateNamespace(ctx, cfg.Cluster.Namespace); err != nil {
		return err
	}
	a, err := app.New(cfg, log, app.Options{RESTConfig: env.Config})
	if err != nil {
		return err
	}
	go demo(ctx, env, log)
	log.Info("agent endpoints", "healthz", "http://"+a.HTTPAddr()+"/healthz", "metrics", "http://"+a.HTTPAddr()+"/metrics")
	return a.Run(ctx)
}

// runAgainstCluster runs the agent with the given config files against the
// kubeconfig's current cluster.
func runAgainstCluster(ctx context.Context, paths []string) error {
	cfg, err := app.Load(paths...)
	if err != nil {
		return fmt.Errorf("KUBECHAT_CONFIG: %w", err)
	}
	log, err := logging.New(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	rc, err := app.ClusterConfig("", cfg.Cluster.Kubeconfig)
	if err != nil {
		return fmt.Errorf("KUBECHAT_CONFIG is set, but there is no cluster to run against (set KUBECONFIG or write ~/.kube/config): %w", err)
	}
	log.Info("running against the kubeconfig's cluster", "server", rc.Host, "config", strings.Join(paths, ","))
	a, err := app.New(cfg, log, app.Options{RESTConfig: rc})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// demo creates a healthy and a crash-looping Deployment once the agent has synced.
func demo(ctx context.Context, env *testenv.Env, log *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(3 * time.Second):
	}
	if err := env.CreateNamespace(ctx, "demo"); err != nil {
		log.Error("demo namespace", "err", err)
		return
	}
	for _, d := range []struct {
		name   string
		labels map[string]string
	}{{"web", nil}, {"broken", map[string]string{testenv.CrashLoopLabel: "true"}}} {
		if _, err := env.Client.AppsV1().Deployments("demo").Create(ctx, testenv.Deployment(d.name, d.labels), metav1.CreateOptions{}); err != nil {
			log.Error("demo deployment", "name", d.name, "err", err)
		}
	}
}
