package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubechat/kubechat/internal/app"
	"github.com/kubechat/kubechat/internal/fleet"
	"github.com/kubechat/kubechat/internal/fleet/hub"
	"github.com/kubechat/kubechat/internal/health"
	"github.com/kubechat/kubechat/internal/httpserver"
	"github.com/kubechat/kubechat/internal/logging"
)

func hubCommand() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "hub --config FILE...",
		Short: "Run the hub of a fleet: the chat connections of many clusters' agents",
		Long: `Run the hub of a fleet until SIGINT or SIGTERM (see docs/fleet.md). The
hub holds the chat platforms and no cluster access: each cluster's agent
publishes its alerts to NATS JetStream and takes its commands from there,
through a platform of type "hub". The config's fleet section names the
clusters and the NATS connection (or runs NATS embedded); each channel
names the clusters that post to it.`,
		Example: `  kubechat hub --config hub.yaml`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHub(cmd, files)
		},
	}
	configFlag(cmd.Flags(), &files, "config file; repeat to merge several in order")
	return cmd
}

func runHub(cmd *cobra.Command, files []string) error {
	stderr := cmd.ErrOrStderr()
	if len(files) == 0 {
		return usageError{errors.New("--config is required: the hub's platforms, channels and fleet")}
	}
	cfg, err := app.Load(files...)
	if err != nil {
		fmt.Fprintf(stderr, "kubechat: invalid config:\n%v\n", err)
		return exitCode(1)
	}
	log, err := logging.New(stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "kubechat: %v\n", err)
		return exitCode(1)
	}
	settleGC := startGC(os.LookupEnv)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tr := health.New(time.Duration(cfg.HTTP.UnhealthyAfter))
	reg.MustRegister(tr)
	srv, err := httpserver.New(cfg.HTTP.Listen, tr, reg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitCode(1)
	}
	h, err := hub.New(cfg, log, hub.Options{Metrics: reg, Health: tr, URL: app.AdvertiseURL(cfg, srv.Addr())})
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitCode(1)
	}
	srv.SetInbound(h.Inbound())
	g, ctx := errgroup.WithContext(cmd.Context())
	g.Go(func() error { return srv.Start(ctx, time.Duration(cfg.HTTP.ShutdownTimeout)) })
	g.Go(func() error { return h.Run(ctx) })
	g.Go(func() error { settleAfterStart(ctx, tr.Ready, settleGC, log); return nil })
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped with an error", "err", err)
		return exitCode(1)
	}
	return nil
}

func fleetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Tools for a fleet of agents behind one hub",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageError{errors.New("name a command: credentials")}
		},
	}
	cmd.AddCommand(credentialsCommand())
	return cmd
}

func credentialsCommand() *cobra.Command {
	var clusters []string
	var out string
	cmd := &cobra.Command{
		Use:   "credentials --cluster NAME... --out DIR",
		Short: "Write the NATS users of a fleet: one NKey for the hub and one per cluster",
		Long: `Write a fresh NKey user for the hub and one for each cluster's agent into
DIR: hub.nk and <cluster>.nk (the seeds, secrets: mount each only where it
is used), and nats-server.conf, whose authorization block lets each agent
publish only to its own subjects and receive only its own commands. Give
nats-server.conf to NATS (or to the hub's embedded NATS as
fleet.embedded.configFile). Existing files are not overwritten.`,
		Example: `  kubechat fleet credentials --cluster prod --cluster staging --out ./fleet`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(clusters) == 0 || out == "" {
				return usageError{errors.New("--cluster (at least one) and --out are required")}
			}
			for _, c := range clusters {
				if c == "hub" || len(validation.IsDNS1123Label(c)) > 0 {
					return usageError{fmt.Errorf("--cluster %q: a cluster name is a DNS label other than \"hub\"", c)}
				}
			}
			creds, err := fleet.NewCredentials(clusters)
			if err != nil {
				return usageError{err}
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			files := map[string][]byte{"hub.nk": creds.Hub.Seed, "nats-server.conf": []byte(creds.ServerConfig())}
			for name, u := range creds.Agents {
				files[name+".nk"] = u.Seed
			}
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				if _, err := os.Stat(filepath.Join(out, n)); err == nil {
					return fmt.Errorf("%s exists; not overwritten (use another --out)", filepath.Join(out, n))
				}
			}
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(out, n), files[n], 0o600); err != nil {
					return err
				}
			}
			return writeString(cmd.OutOrStdout(), fmt.Sprintf("wrote %s to %s\n", strings.Join(names, ", "), out))
		},
	}
	cmd.Flags().StringArrayVar(&clusters, "cluster", nil, "a cluster of the fleet; repeat for each")
	cmd.Flags().StringVar(&out, "out", "", "directory to write the seeds and nats-server.conf into")
	return cmd
}
