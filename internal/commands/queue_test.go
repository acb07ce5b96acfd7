package commands

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/testenv"
	"github.com/kubechat/kubechat/plugins/kubectl"
)

const queueConfig = `cluster:
  name: dev
platforms:
  - name: chat
    type: log
channels:
%s
executors:
  - name: kubectl
    type: kubectl
commands:
  maxConcurrent: %d
  maxConcurrentPerChannel: %d
`

func queueHandler(t *testing.T, channels []string, total, perChannel int, e executor.Executor) *Handler {
	t.Helper()
	var chs strings.Builder
	for _, c := range channels {
		fmt.Fprintf(&chs, "  - name: %s\n    platform: chat\n    bindings:\n      executors: [kubectl]\n    identity:\n      user: crowd\n", c)
	}
	cfg, err := config.Parse(config.Known{PlatformTypes: []string{"log"}, ExecutorTypes: []string{"kubectl"}},
		config.File{Name: "queue.yaml", Data: fmt.Appendf(nil, queueConfig, chs.String(), total, perChannel)})
	require.NoError(t, err)
	h, err := New(cfg, Options{Executors: map[string]executor.Executor{"kubectl": e}}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return h
}

// gated analyzes as kubectl does; each command it runs waits at the gate
// until the test lets it through.
type gated struct {
	executor.Executor
	entered chan string
	gate    map[string]chan struct{}
}

func (g *gated) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	name := req.Args[len(req.Args)-1]
	g.entered <- name
	select {
	case <-g.gate[name]:
	case <-ctx.Done():
		return executor.Result{}, ctx.Err()
	}
	return executor.Result{Output: "ran " + name + "\n"}, nil
}

// TestBusyCommandsWaitInLine: past the per-channel and total bounds a
// command waits, its reply says where it stands in line, and its result
// replaces that; a channel at its bound does not hold up another's.
func TestBusyCommandsWaitInLine(t *testing.T) {
	testenv.Skip(t, env) // kubectl resolves resource names through discovery
	k, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	g := &gated{Executor: k, entered: make(chan string, 4), gate: map[string]chan struct{}{}}
	for _, n := range []string{"a1", "a2", "b1", "b2"} {
		g.gate[n] = make(chan struct{})
	}
	h := queueHandler(t, []string{"a", "b"}, 2, 1, g)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	type reply struct {
		drafts []string
		final  chat.Message
	}
	replies := map[string]*reply{}
	shown := make(chan string, 8)
	var wg sync.WaitGroup
	run := func(channel, name string) {
		r := &reply{}
		replies[name] = r
		var mu sync.Mutex
		wg.Go(func() {
			d := draftFunc(func(m chat.Message) {
				mu.Lock()
				r.drafts = append(r.drafts, m.PlainText())
				mu.Unlock()
				shown <- name + ": " + m.PlainText()
			})
			r.final = h.HandleDraft(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: channel, ID: channel}, UserID: "U-" + name,
				Text: "kubectl get configmap " + name, Thread: chat.MessageRef{ID: "T-" + name}}, d)
		})
	}
	run("a", "a1")
	require.Equal(t, "a1", <-g.entered)
	run("a", "a2") // channel a is at its bound of 1
	require.Contains(t, <-shown, "a2: kubectl get configmap a2")
	run("b", "b1") // a total slot is free, and b is under its bound
	require.Equal(t, "b1", <-g.entered)
	run("b", "b2") // both bounds reached: second in line, after a2
	require.Contains(t, <-shown, "b2: ")

	close(g.gate["a1"])
	require.Equal(t, "a2", <-g.entered, "a2 was first in line")
	close(g.gate["a2"])
	close(g.gate["b1"])
	require.Equal(t, "b2", <-g.entered)
	close(g.gate["b2"])
	wg.Wait()

	require.Equal(t, []string{"kubectl get configmap a2\nBusy, queued (position 1): other commands are running; this one runs as soon as a slot frees, and its result replaces this message."}, replies["a2"].drafts)
	require.Len(t, replies["b2"].drafts, 1)
	require.Contains(t, replies["b2"].drafts[0], "Busy, queued (position 2)")
	require.Empty(t, replies["a1"].drafts, "a command that found a slot says nothing until its result")
	require.Empty(t, replies["b1"].drafts)
	for name, r := range replies {
		require.Contains(t, r.final.PlainText(), "ran "+name, name)
	}
}

// TestBusyCommandGivesUp: a command that waits longer than the queue
// timeout runs nothing and says the agent is busy.
func TestBusyCommandGivesUp(t *testing.T) {
	testenv.Skip(t, env)
	k, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	g := &gated{Executor: k, entered: make(chan string, 2), gate: map[string]chan struct{}{"held": make(chan struct{})}}
	h := queueHandler(t, []string{"a"}, 1, 1, g)
	h.slots.wait = time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		h.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "a", ID: "a"}, UserID: "U1", Text: "kubectl get configmap held"})
	})
	require.Equal(t, "held", <-g.entered)
	m := h.Handle(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: "a", ID: "a"}, UserID: "U2", Text: "kubectl get configmap other"})
	require.Equal(t, "kubectl get configmap other: not run", m.Title)
	require.Contains(t, m.PlainText(), "kubechat is busy")
	close(g.gate["held"])
	wg.Wait()
	require.Empty(t, g.entered, "the command that gave up never ran")
}

// inflight counts the commands running at once.
type inflight struct {
	executor.Executor
	now, most atomic.Int32
}

func (f *inflight) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
	return f.Executor.Execute(ctx, req)
}

// TestTwentyUsersAtOnce: twenty users in four channels each ask for the
// ConfigMaps of a namespace of their own, at once, through the real
// kubectl executor. Every reply names its own namespace's ConfigMap and
// no other's, and no more commands ran at once than the bounds allow.
func TestTwentyUsersAtOnce(t *testing.T) {
	testenv.Skip(t, env)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const n = 20
	name := func(i int) string { return fmt.Sprintf("crowd-%02d", i) }
	for i := range n {
		require.NoError(t, env.CreateNamespace(ctx, name(i)))
		_, err := env.Client.CoreV1().ConfigMaps(name(i)).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm-" + name(i)}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = env.Client.RbacV1().RoleBindings(name(i)).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "crowd-view"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: "crowd"}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	k, err := kubectl.New("kubectl", config.Raw{}, executor.Deps{RESTConfig: env.Config})
	require.NoError(t, err)
	f := &inflight{Executor: k}
	channels := []string{"c0", "c1", "c2", "c3"}
	h := queueHandler(t, channels, 10, 4, f)
	replies := make([]chat.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ch := channels[i%len(channels)]
			replies[i] = h.HandleDraft(ctx, chat.Inbound{Platform: "chat", Channel: chat.Channel{Name: ch, ID: ch}, UserID: "U-" + name(i),
				Text: "kubectl get configmaps -n " + name(i), Thread: chat.MessageRef{ID: "T-" + name(i)}}, draftFunc(func(chat.Message) {}))
		})
	}
	wg.Wait()
	for i, m := range replies {
		text := m.PlainText()
		require.Equal(t, chat.LevelSuccess, m.Level, text)
		require.Contains(t, text, "cm-"+name(i))
		for j := range n {
			if j != i {
				require.NotContains(t, text, name(j), "reply %d holds command %d's output", i, j)
			}
		}
	}
	require.LessOrEqual(t, f.most.Load(), int32(10))
}
