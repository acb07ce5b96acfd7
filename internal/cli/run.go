package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubechat/kubechat/configs"
	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/exepages"
	"github.com/kubechat/kubechat/internal/logging"
)

func runCommand() *cobra.Command {
	var files []string
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "run [--config FILE]... [--kubeconfig FILE]",
		Short: "Run the agent",
		Long: `Run the agent until SIGINT or SIGTERM. Without --config it runs the
embedded default config, which logs alerts to stdout. In a pod it connects
with its in-cluster ServiceAccount; elsewhere through --kubeconfig, the
config's cluster.kubeconfig, $KUBECONFIG or ~/.kube/config.

The agent reloads its config files when their content changes, and on
SIGHUP: a valid config takes over without a restart; an invalid one is
refused and the running one kept (see docs/reload.md).`,
		Example: `  kubechat run --config kubechat.yaml --kubeconfig ~/.kube/config
  kubechat run --config base.yaml --config prod.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd, files, kubeconfig)
		},
	}
	configFlag(cmd.Flags(), &files, "config file; repeat to merge several in order (default: the embedded config)")
	kubeconfigFlag(cmd.Flags(), &kubeconfig, "kubeconfig file, when not running in a pod (default: cluster.kubeconfig, $KUBECONFIG or ~/.kube/config)")
	return cmd
}

func runAgent(cmd *cobra.Command, files []string, kubeconfig string) error {
	settleGC := startGC(os.LookupEnv)
	// SIGHUP asks for a reload of the config files (which also happens
	// when their content changes); caught from the start, it never stops
	// the agent.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stderr := cmd.ErrOrStderr()
	cfg, err := loadConfig(files)
	if err != nil {
		fmt.Fprintf(stderr, "kubechat: invalid config:\n%v\n", err)
		return exitCode(1)
	}
	log, err := logging.New(stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "kubechat: %v\n", err)
		return exitCode(1)
	}
	restCfg, err := app.ClusterConfig(kubeconfig, cfg.Cluster.Kubeconfig)
	if err != nil {
		log.Error("no cluster connection", "err", err)
		return exitCode(1)
	}
	a, err := app.New(cfg, log, app.Options{RESTConfig: restCfg, ConfigFiles: files, Reload: hup})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitCode(1)
	}
	ctx, stop := context.WithCancel(cmd.Context())
	defer stop()
	go settleAfterStart(ctx, a.Ready, settleGC, log)
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitCode(1)
	}
	return nil
}

// startPagesAfter bounds the wait for readiness before the binary's
// pages are released anyway, as for an agent that cannot reach a part.
const startPagesAfter = time.Minute

// settleAfterStart runs once ready reports nothing missing (or after
// startPagesAfter): it settles the collector (startGC's settle) and
// releases the binary's pages, since most of what the start ran never
// runs again, and without this its pages would stay resident, tens of
// MiB (docs/performance.md). The agent and the hub both call it.
func settleAfterStart(ctx context.Context, ready func() error, settleGC func(), log *slog.Logger) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(startPagesAfter)
	for ready() != nil && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	settleGC()
	n, err := exepages.Release()
	if err != nil {
		log.Warn("could not release the binary's pages; memory use is higher, nothing else changes", "err", err)
		return
	}
	log.Debug("released the binary's pages", "mapped_bytes", n)
}

// loadConfig merges files in order, or loads the embedded default.
func loadConfig(files []string) (*config.Config, error) {
	if len(files) == 0 {
		return config.Parse(app.Known(), config.File{Name: "default.yaml (embedded)", Data: configs.Default})
	}
	return app.Load(files...)
}
