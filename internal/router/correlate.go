package router

import (
	"context"
	"regexp"
	"strings"
	"sync"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Correlation: while an Alertmanager alert about a workload is open in a
// channel, the Kubernetes transition alerts about that workload (or its
// pods) are posted into the alert's thread instead of as new messages. An
// alert names its workload with the labels kube-state-metrics and most
// rules use: namespace plus pod, deployment, statefulset, daemonset or
// job_name. The index lives in memory: after a restart, Kubernetes alerts
// start new messages until the Alertmanager group notifies again.

// workloadLabels maps alert labels to the Kubernetes kinds they name.
var workloadLabels = map[string]string{
	"pod": "pod", "deployment": "deployment", "statefulset": "statefulset",
	"daemonset": "daemonset", "job_name": "job",
}

// Pod name suffixes of the controllers' pods.
var podSuffix = map[string]*regexp.Regexp{
	"deployment":  regexp.MustCompile(`^[a-z0-9]+-[a-z0-9]{5}$`),
	"statefulset": regexp.MustCompile(`^[0-9]+$`),
	"daemonset":   regexp.MustCompile(`^[a-z0-9]{5}$`),
	"job":         regexp.MustCompile(`^[a-z0-9]{5}$`),
}

type threads struct {
	mu   sync.Mutex
	refs map[string]map[*sender]chat.MessageRef // by workload key
	keys map[string][]string                    // group -> its workload keys
}

func newThreads() *threads {
	return &threads{refs: map[string]map[*sender]chat.MessageRef{}, keys: map[string][]string{}}
}

func workloadKey(ns, kind, name string) string { return ns + "/" + kind + "/" + name }

// alertKeys are the workloads an alert group's labels name.
func alertKeys(ev event.Event) []string {
	ns := ev.Labels["namespace"]
	if ns == "" {
		return nil
	}
	var out []string
	for label, kind := range workloadLabels {
		if name := ev.Labels[label]; name != "" {
			out = append(out, workloadKey(ns, kind, name))
		}
	}
	return out
}

// open records the message of a firing alert group in s's channel.
func (t *threads) open(ev event.Event, s *sender, ref chat.MessageRef) {
	if ev.Group == "" {
		return
	}
	keys := alertKeys(ev)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys[ev.Group] = keys
	for _, k := range keys {
		if t.refs[k] == nil {
			t.refs[k] = map[*sender]chat.MessageRef{}
		}
		t.refs[k][s] = ref
	}
}

// close forgets a resolved alert group in s's channel.
func (t *threads) close(ev event.Event, s *sender) {
	if ev.Group == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range t.keys[ev.Group] {
		delete(t.refs[k], s)
		if len(t.refs[k]) == 0 {
			delete(t.refs, k)
		}
	}
}

// lookup returns the open alert thread in s's channel about ev's object.
func (t *threads) lookup(ev event.Event, s *sender) (chat.MessageRef, bool) {
	kind := strings.ToLower(ev.Object.Kind)
	ns, name := ev.Object.Namespace, ev.Object.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	if ref, ok := t.refs[workloadKey(ns, kind, name)][s]; ok {
		return ref, true
	}
	if kind != "pod" {
		return chat.MessageRef{}, false
	}
	// A pod of a controller the alert names: web-7d4b9c-x2x9z of deployment web.
	for ctrl, suffix := range podSuffix {
		for i := strings.IndexByte(name, '-'); i > 0; i = next(name, i) {
			if suffix.MatchString(name[i+1:]) {
				if ref, ok := t.refs[workloadKey(ns, ctrl, name[:i])][s]; ok {
					return ref, true
				}
			}
		}
	}
	return chat.MessageRef{}, false
}

func next(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '-')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// correlated reports whether any of senders holds an open alert about ev's object.
func (t *threads) correlated(ev event.Event, senders []*sender) bool {
	for _, s := range senders {
		if _, ok := t.lookup(ev, s); ok {
			return true
		}
	}
	return false
}

// intoThread posts a Kubernetes transition into the thread of the open
// Alertmanager alert about its workload in s's channel, or, in a channel
// without one, as a transition alert of its own.
func (r *Router) intoThread(ctx context.Context, ev event.Event, s *sender) {
	ref, ok := r.threads.lookup(ev, s)
	if !ok {
		r.transition(ctx, ev, s.b, s)
		return
	}
	m := Render(ev)
	if ev.Transition == event.Resolved {
		m.Title = ev.Object.String() + " recovered"
		m.Level = chat.LevelSuccess
	}
	m.Thread = &ref
	r.enqueue(s, func() (chat.Message, bool) { return m, true }, func(chat.MessageRef) {
		r.remember(ev.UID)
		if ev.Transition == event.Failing {
			r.triggerActions(ev, s, ref)
		}
	})
}
