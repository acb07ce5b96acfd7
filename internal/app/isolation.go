package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/podrun"
)

// ImageEnv names the environment variable holding the agent's own image,
// which command pods run when an executor names no pod.image. The Helm
// chart sets it.
const ImageEnv = "KUBECHAT_IMAGE"

// podExecutors wraps, for every executor some channel runs in pods
// (podrun.Place), a pod-running variant; executors that run pods
// themselves (the run executor) are used as they are. defaultImage is the
// image of executors that name none. It also returns the namespaces
// command pods may run in, for the leftover cleanup.
func podExecutors(cfg *config.Config, execs map[string]executor.Executor, runner *podrun.Runner, defaultImage string) (map[string]executor.Executor, []string, error) {
	place := podrun.Place(cfg, execs)
	byName := map[string]config.Executor{}
	for _, e := range cfg.Executors {
		byName[e.Name] = e
	}
	out := map[string]executor.Executor{}
	for _, ch := range cfg.Channels {
		for _, name := range ch.Bindings.Executors {
			if _, ok := execs[name].(podrun.Isolated); ok {
				out[name] = execs[name]
			}
		}
	}
	var errs []error
	for _, name := range place.Wrapped {
		ec := byName[name]
		if refersToSecrets(ec.Settings) {
			errs = append(errs, fmt.Errorf("executor %q: isolation pod: its settings reference secrets, which never leave the agent; run it in-process", name))
			continue
		}
		pod := ec.Pod.WithDefaults()
		if pod.Image == "" {
			pod.Image = defaultImage
		}
		w, err := podrun.Wrap(execs[name], runner, podrun.Options{Type: ec.Type, Settings: ec.Settings, Pod: pod})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = w
	}
	return out, place.Namespaces, errors.Join(errs...)
}

// refersToSecrets reports whether a settings block names a secret
// ("${VAR}", fromEnv, fromFile): a command pod gets the settings as an
// argument, and a secret must not follow them out of the agent.
func refersToSecrets(raw config.Raw) bool {
	if raw.IsZero() {
		return false
	}
	b, err := yaml.Marshal(raw)
	if err != nil {
		return true
	}
	text := string(b)
	return strings.Contains(text, "${") || strings.Contains(text, "fromEnv") || strings.Contains(text, "fromFile")
}

// SweepInterval is how often the leader deletes command pods past their
// deadline.
const SweepInterval = 5 * time.Minute

// commandPods runs on the leader: it adopts the command pods an earlier
// agent left running (a deploy, a new leader), posting each one's result
// once into the thread it answers, then sweeps pods past their deadline
// until ctx ends.
func (a *App) commandPods(ctx context.Context, g *generation) error {
	if a.runner == nil || len(g.podNamespaces) == 0 {
		return nil
	}
	deliver := func(ctx context.Context, ad podrun.Adopted) error { return a.deliverAdopted(ctx, g, ad) }
	if err := a.runner.Adopt(ctx, g.podNamespaces, a.cfg.HA.LeaderElection, deliver); err != nil {
		a.log.Warn("command pods of an earlier agent not all taken over", "err", err)
	}
	a.runner.Sweep(ctx, g.podNamespaces, SweepInterval)
	return nil
}

// deliverAdopted posts an adopted command pod's result into the thread
// it answers, unless the outbox remembers its key as delivered (a leader
// that posted it and stopped before deleting the pod).
func (a *App) deliverAdopted(ctx context.Context, g *generation, ad podrun.Adopted) error {
	if a.outbox.Delivered(ad.Key) {
		return nil
	}
	p, ok := g.byName[ad.Reply.Platform]
	if !ok {
		return fmt.Errorf("platform %q is no longer configured", ad.Reply.Platform)
	}
	m := g.commands.PodResult(ad.Reply.Platform, chat.Channel{Name: ad.Reply.ChannelName, ID: ad.Reply.Channel},
		strings.TrimSpace(ad.Type+" "+strings.Join(ad.Args, " ")), ad.ServiceAccount, podrun.Result(ad.Outcome))
	m.Thread = &chat.MessageRef{Platform: ad.Reply.Platform, Channel: ad.Reply.ThreadChannel, ID: ad.Reply.ThreadID, Thread: ad.Reply.ThreadRoot}
	to := chat.Channel{Name: ad.Reply.ChannelName, ID: ad.Reply.ThreadChannel}
	if to.ID == "" {
		to.ID = ad.Reply.Channel
	}
	if _, _, err := chat.Send(ctx, p, to, m, chat.Backoff{}, time.Now().Add(chat.ReplyDeadline)); err != nil {
		return err
	}
	a.outbox.Done(ad.Key)
	a.log.Info("posted the result of an adopted command pod", "pod", ad.Outcome.Pod, "platform", ad.Reply.Platform, "channel", ad.Reply.Channel)
	return nil
}

// newRunner returns the runner of command pods, or nil without a cluster connection.
func newRunner(cs kubernetes.Interface, cluster string, log *slog.Logger) *podrun.Runner {
	if cs == nil {
		return nil
	}
	return podrun.New(cs, cluster, log)
}

// errNoCluster is returned when pods are configured without a cluster connection.
var errNoCluster = errors.New("isolation pod and the run executor need a cluster connection (in-cluster or --kubeconfig)")
