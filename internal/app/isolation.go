package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/client-go/kubernetes"

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

// cleanupPods deletes the command pods an earlier agent left behind.
func cleanupPods(ctx context.Context, runner *podrun.Runner, namespaces []string, keepLive bool, log *slog.Logger) {
	if runner == nil || len(namespaces) == 0 {
		return
	}
	n, err := runner.Cleanup(ctx, namespaces, keepLive)
	if err != nil {
		log.Warn("leftover command pods not all deleted", "err", err)
	}
	if n > 0 {
		log.Info("deleted leftover command pods", "count", n)
	}
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
