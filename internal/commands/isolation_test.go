package commands

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

const isolationConfig = `cluster:
  name: dev
platforms:
  - name: chat
    type: log
channels:
  - name: isolated
    platform: chat
    bindings:
      executors: [kubectl]
    identity:
      serviceAccount: kubechat/reader
  - name: inproc
    platform: chat
    isolation: inProcess
    bindings:
      executors: [kubectl]
    identity:
      serviceAccount: kubechat/reader
executors:
  - name: kubectl
    type: kubectl
    isolation: pod
    policy:
      namespaces: [apps]
`

// podStub stands for the pod-running variant of an executor: it analyzes
// as the real executor does and answers every command itself.
type podStub struct {
	executor.Executor
	calls atomic.Int32
}

func (p *podStub) Execute(context.Context, executor.Request) (executor.Result, error) {
	p.calls.Add(1)
	return executor.Result{Output: "from a pod\n"}, nil
}

// TestIsolationPerChannel: a channel's isolation overrides its executor's;
// policy refuses a command before either variant runs.
func TestIsolationPerChannel(t *testing.T) {
	testenv.Skip(t, env) // kubectl resolves resource names through discovery
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"kubectl"}},
		config.File{Name: "router.yaml", Data: []byte(isolationConfig)})
	require.NoError(t, err)
	k, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	inProcess := &counting{Executor: k}
	pod := &podStub{Executor: k}
	r, err := New(cfg,
		Options{Executors: map[string]executor.Executor{"kubectl": inProcess}, PodExecutors: map[string]executor.Executor{"kubectl": pod}},
		prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	say := func(channel, text string) chat.Message {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return r.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: "U1", Text: text})
	}

	require.Contains(t, say("isolated", "kubectl get pods").PlainText(), "from a pod")
	require.Equal(t, int32(1), pod.calls.Load())
	require.Equal(t, int32(0), inProcess.calls.Load())

	say("inproc", "kubectl get pods")
	require.Equal(t, int32(1), inProcess.calls.Load(), "the channel's inProcess overrides the executor's pod")
	require.Equal(t, int32(1), pod.calls.Load())

	m := say("isolated", "kubectl delete pod web")
	require.Equal(t, "Denied by kubechat policy", m.Title)
	m = say("isolated", "kubectl get pods -n kube-system")
	require.Equal(t, "Denied by kubechat policy", m.Title)
	require.Equal(t, int32(1), pod.calls.Load(), "no pod for a command policy refuses")
}
