package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/event"
)

// A reload reads the config files again, checks the new config as
// check-config does, builds its generation and swaps it in; a config that
// fails any of that leaves the running one in place and is reported in the
// log, in the metrics and, from the leader, in reload.notifyChannel.
// docs/reload.md says what a reload keeps running.

// reloadMetrics are kubechat_config_* (see docs/metrics.md).
type reloadMetrics struct {
	total   *prometheus.CounterVec
	ok      prometheus.Gauge
	okSince prometheus.Gauge
}

// Results of a reload, as counted in kubechat_config_reloads_total.
const (
	reloadSuccess = "success"
	reloadFailure = "failure"
)

func newReloadMetrics(reg prometheus.Registerer) reloadMetrics {
	m := reloadMetrics{
		total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "kubechat_config_reloads_total",
			Help: "Config reloads (files changed, or SIGHUP) by result: success (the new config runs), failure (refused; the running config is kept).",
		}, []string{"result"}),
		ok: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "kubechat_config_last_reload_successful",
			Help: "1 when the config files were last taken (at start or by a reload), 0 when the last reload was refused.",
		}),
		okSince: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "kubechat_config_last_reload_success_timestamp_seconds",
			Help: "When the running config was taken, at start or by the last successful reload (Unix seconds).",
		}),
	}
	m.total.WithLabelValues(reloadSuccess)
	m.total.WithLabelValues(reloadFailure)
	m.ok.Set(1)
	m.okSince.SetToCurrentTime()
	return m
}

// reload loads the config files again and swaps the new config in, or
// keeps the running one and reports why. trigger says what asked for it.
func (a *App) reload(ctx context.Context, trigger string) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if len(a.opts.ConfigFiles) == 0 {
		a.log.Info("nothing to reload: the agent runs the embedded config", "trigger", trigger)
		return nil
	}
	cur := a.current()
	cfg, err := Load(a.opts.ConfigFiles...)
	if err == nil {
		err = checkBuild(cfg)
	}
	if err == nil {
		err = restartOnly(cur.cfg, cfg)
	}
	var g *generation
	if err == nil {
		g, err = a.build(cfg, cur)
	}
	if err != nil {
		a.refuse(ctx, cur, trigger, err)
		return err
	}
	a.swap(cur, g)
	a.reloads.total.WithLabelValues(reloadSuccess).Inc()
	a.reloads.ok.Set(1)
	a.reloads.okSince.SetToCurrentTime()
	a.log.Info("config reloaded", append([]any{"trigger", trigger, "files", strings.Join(cfg.Files, ",")}, changes(cur, g)...)...)
	return nil
}

// swap makes g the running generation: commands and inbound HTTP at once,
// then the listeners on every replica and, where it runs, the leader's
// work (each applied by its supervisor before swap returns). The parts
// only old had are forgotten last, once they stopped.
func (a *App) swap(old, g *generation) {
	a.mu.Lock()
	a.gen.Store(g)
	g.alerts.SetActions(g.commands)
	a.http.SetInbound(g.inbound)
	var sups []*supervisor // the leader's first
	for sup := range a.supervisors {
		if sup.leader {
			sups = append([]*supervisor{sup}, sups...)
		} else {
			sups = append(sups, sup)
		}
	}
	a.mu.Unlock()
	a.registerPlatforms(g, old)
	for _, sup := range sups {
		sup.send(g)
	}
	if old.alerts != g.alerts {
		old.alerts.Close()
	}
	for _, p := range old.platforms {
		if _, ok := g.byName[p.Name()]; !ok {
			a.health.Unregister(listenerPart(p.Name()))
			a.health.Unregister("delivery/" + p.Name())
		}
	}
	for _, s := range old.sources {
		if _, ok := g.source(s.Name()); !ok {
			a.health.Unregister(sourcePart(s.Name()))
		}
	}
}

// refuse reports a reload that failed: in the log, with every problem
// positioned as check-config prints it; in the metrics; and, from the
// leader, in the running config's reload.notifyChannel, once per content
// of the files and problem.
func (a *App) refuse(ctx context.Context, cur *generation, trigger string, err error) {
	a.reloads.total.WithLabelValues(reloadFailure).Inc()
	a.reloads.ok.Set(0)
	a.log.Error("config reload refused; the running config is kept", "trigger", trigger, "err", err)
	channel := cur.cfg.Reload.NotifyChannel
	if channel == "" || !a.Leading() {
		return // a standby only logs: the leader tells the channel
	}
	files := strings.Join(a.opts.ConfigFiles, ", ")
	id := sha256.Sum256([]byte(hashFiles(a.opts.ConfigFiles) + "\x00" + err.Error()))
	ev := event.Event{
		Source:   "kubechat",
		Cluster:  a.cfg.Cluster.Name,
		Type:     event.Error,
		Level:    event.Critical,
		Object:   event.Object{Kind: "Config", Name: files},
		Reason:   "ReloadRefused",
		Headline: "Config reload refused: the running config is kept",
		Message:  err.Error(),
		Time:     time.Now(),
		ID:       "config-reload." + hex.EncodeToString(id[:12]),
	}
	if nerr := cur.alerts.Notice(ctx, channel, ev); nerr != nil {
		a.log.Error("cannot tell reload.notifyChannel", "err", nerr)
	}
}

// restartOnly refuses a new config that changes what only a restart
// applies: the cluster block (the agent's identity, its state and
// leases), log (the logger), http (the server and the health grace) and ha
// (leader election, the button key). Each changed field is named where the
// new config sets it.
func restartOnly(old, new *config.Config) error {
	var errs []error
	for _, b := range []struct {
		path     string
		old, new any
	}{{"cluster", old.Cluster, new.Cluster}, {"log", old.Log, new.Log}, {"http", old.HTTP, new.HTTP}, {"ha", old.HA, new.HA}} {
		ov, nv := reflect.ValueOf(b.old), reflect.ValueOf(b.new)
		for i := range ov.NumField() {
			if reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
				continue
			}
			key, _, _ := strings.Cut(ov.Type().Field(i).Tag.Get("yaml"), ",")
			errs = append(errs, new.Errorf(b.path+"."+key, "changed, but only a restart applies it"))
		}
	}
	return errors.Join(errs...)
}

// watchConfig reloads when the config files' content changed (polled
// every a.poll) or when asked (Options.Reload: SIGHUP), until ctx ends.
func (a *App) watchConfig(ctx context.Context) error {
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.opts.Reload:
			a.watch.take()
			_ = a.reload(ctx, "signal")
		case <-t.C:
			if a.watch.changed() {
				_ = a.reload(ctx, "files changed")
			}
		}
	}
}

// reloadPoll is how often the config files are read for a change.
const reloadPoll = time.Second
