// Command local is "make run": it starts a throwaway control plane (etcd,
// kube-apiserver, controller-manager, scheduler, kwok nodes), creates demo
// workloads and a Helm release, breaks a Deployment and the release a few
// seconds later, and runs the agent against it with the demo config
// (configs/demo.yaml): the built-in web chat on http://127.0.0.1:8080,
// whose address (with a fresh access token) it prints. In #ops, "kubectl
// rollout undo deployment/api" and "helm rollback shop" fix them, and
// their alerts are edited into "Resolved". KUBECHAT_LISTEN changes the
// address. Ctrl-C stops everything.
//
// With KUBECHAT_CONFIG set (one config file, or several separated by
// commas) and a kubeconfig present ($KUBECONFIG or ~/.kube/config), it runs
// the agent with that config against that cluster instead, starting nothing.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/logging"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/helm/helmtest"
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
	// A fresh token: other users of this machine cannot use the page.
	token := make([]byte, 18)
	if _, err := rand.Read(token); err != nil {
		return err
	}
	if err := os.Setenv("KUBECHAT_DEMO_TOKEN", hex.EncodeToString(token)); err != nil {
		return err
	}
	files := []config.File{{Name: "configs/demo.yaml", Data: configs.Demo}}
	if listen := os.Getenv("KUBECHAT_LISTEN"); listen != "" {
		files = append(files, config.File{Name: "KUBECHAT_LISTEN", Data: []byte("http:\n  listen: " + strconv.Quote(listen) + "\n")})
	}
	cfg, err := config.Parse(app.Known(), files...)
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

	// The agent keeps its state (open alerts, checkpoints) in this
	// namespace; the web chat's commands act as a user who may read all.
	if err := env.CreateNamespace(ctx, cfg.Cluster.Namespace); err != nil {
		return err
	}
	if err := env.BindGroupToClusterRole(ctx, "kubechat-demo-viewers", "view"); err != nil {
		return err
	}
	if err := env.BindGroupToClusterRole(ctx, "kubechat-demo-editors", "edit"); err != nil {
		return err
	}
	a, err := app.New(cfg, log, app.Options{RESTConfig: env.Config})
	if err != nil {
		return err
	}
	go demo(ctx, env, log)
	fmt.Printf("\nkubechat demo: open http://%s/chat/demo/?token=%s\n"+
		"  #cluster reads: try  kubectl get pods  or just  kubectl  (a command builder)\n"+
		"  #ops fixes: a Deployment and a Helm release break in a few seconds; try\n"+
		"    kubectl rollout undo deployment/api   and   helm rollback shop   (each asks to Confirm)\n"+
		"  (Ctrl-C stops everything)\n\n", a.HTTPAddr(), os.Getenv("KUBECHAT_DEMO_TOKEN"))
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

// demo creates the demo's workloads once the agent has synced: a healthy
// Deployment (web), one that a new rollout breaks (api: its second
// revision crash-loops, so "rollout undo" fixes it), and a Helm release
// (shop) whose upgrade fails (so "helm rollback" fixes it).
func demo(ctx context.Context, env *testenv.Env, log *slog.Logger) {
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	if !wait(3 * time.Second) {
		return
	}
	const ns = "demo"
	if err := env.CreateNamespace(ctx, ns); err != nil {
		log.Error("demo namespace", "err", err)
		return
	}
	for _, name := range []string{"web", "api"} {
		if _, err := env.Client.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment(name, nil), metav1.CreateOptions{}); err != nil {
			log.Error("demo deployment", "name", name, "err", err)
		}
	}
	if err := helmtest.Install(ctx, env.Config, ns, "shop", helmtest.Chart("web"), nil); err != nil {
		log.Error("demo release", "err", err)
	}
	if !wait(5 * time.Second) {
		return
	}
	// A new rollout of api crash-loops: its old pod keeps serving, and the
	// rollout is stuck until someone undoes it.
	patch := []byte(`{"spec":{"template":{"metadata":{"labels":{"` + testenv.CrashLoopLabel + `":"true"}}}}}`)
	if _, err := env.Client.AppsV1().Deployments(ns).Patch(ctx, "api", types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		log.Error("demo: breaking api", "err", err)
	}
	// An upgrade Kubernetes refuses leaves the release failed.
	if err := helmtest.Upgrade(ctx, env.Config, ns, "shop", map[string]any{"replicas": -1}); err == nil {
		log.Error("demo: the failing upgrade of shop succeeded")
	}
	log.Info("demo: api's new rollout crash-loops and shop's upgrade failed; fix them from #ops")
}
