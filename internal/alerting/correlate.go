package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"maps"
	"regexp"
	"slices"
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
// job_name. Each channel's open alert threads are kept in the state
// ConfigMap, so a restart or a new leader keeps threading.

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

// threadRecord is an open alert group's message in one channel and the
// workloads its labels name.
type threadRecord struct {
	Ref       chat.MessageRef `json:"ref"`
	Workloads []string        `json:"workloads"`
	// At is when a conversation started (Unix nanoseconds), to keep the newest.
	At int64 `json:"at,omitempty"`
}

type threads struct {
	state   chat.StateStore
	log     *slog.Logger
	senders map[string]*sender
	// loaded reads the state on first use: by then the agent has loaded
	// its state (sources, the only callers, run after that).
	loaded sync.Once

	mu       sync.Mutex
	bySender map[*sender]map[string]threadRecord // by alert group
	// saveMu orders the writes of the state: it is taken before mu is
	// released, so lookups need not wait for the API server.
	saveMu sync.Mutex
}

func newThreads() *threads { return &threads{bySender: map[*sender]map[string]threadRecord{}} }

func workloadKey(ns, kind, name string) string { return ns + "/" + kind + "/" + name }

// threadsKey names the state entry of a channel's open alert threads.
func threadsKey(s *sender) string {
	h := sha256.Sum256([]byte(senderKey(s.b)))
	return "threads." + hex.EncodeToString(h[:12])
}

// use makes t keep its records in state, for the channels of senders.
func (t *threads) use(state chat.StateStore, log *slog.Logger, senders map[string]*sender) {
	t.state, t.log, t.senders = state, log, senders
}

// load reads every channel's open alert threads from the state, once.
func (t *threads) load() {
	t.loaded.Do(func() {
		if t.state == nil {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, s := range t.senders {
			v, ok := t.state.Get(threadsKey(s))
			if !ok || v == "" {
				continue
			}
			var m map[string]threadRecord
			if err := json.Unmarshal([]byte(v), &m); err != nil {
				t.log.Warn("ignoring unreadable alert threads", "channel", s.b.channel.ID, "err", err)
				continue
			}
			t.bySender[s] = m
		}
	})
}

// saveAndUnlock writes s's open alert threads and releases t.mu, which
// the caller holds: the value is taken under t.mu, the write is made after
// it is released, in the order of the changes.
func (t *threads) saveAndUnlock(ctx context.Context, s *sender) {
	if t.state == nil {
		t.mu.Unlock()
		return
	}
	value := ""
	if m := t.bySender[s]; len(m) > 0 {
		b, _ := json.Marshal(m)
		value = string(b)
	}
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	t.mu.Unlock()
	if err := t.state.Set(ctx, threadsKey(s), value); err != nil {
		t.log.Warn("alert threads not saved; after a restart, Kubernetes alerts may start their own messages", "err", err)
	}
}

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
	slices.Sort(out)
	return out
}

// open records the message of a firing alert group in s's channel.
func (t *threads) open(ctx context.Context, ev event.Event, s *sender, ref chat.MessageRef) {
	keys := alertKeys(ev)
	if ev.Group == "" || len(keys) == 0 {
		return
	}
	t.load()
	t.mu.Lock()
	if old, ok := t.bySender[s][ev.Group]; ok && old.Ref == ref && slices.Equal(old.Workloads, keys) {
		t.mu.Unlock()
		return
	}
	if t.bySender[s] == nil {
		t.bySender[s] = map[string]threadRecord{}
	}
	t.bySender[s][ev.Group] = threadRecord{Ref: ref, Workloads: keys}
	t.saveAndUnlock(ctx, s)
}

// close forgets a resolved alert group in s's channel.
func (t *threads) close(ctx context.Context, ev event.Event, s *sender) {
	t.load()
	t.mu.Lock()
	if _, ok := t.bySender[s][ev.Group]; !ok || ev.Group == "" {
		t.mu.Unlock()
		return
	}
	delete(t.bySender[s], ev.Group)
	t.saveAndUnlock(ctx, s)
}

// workload is a kind (lower case) and name.
type workload struct{ kind, name string }

// workloadsOf are the workloads ev's object may belong to: the object
// itself, and for a pod the controllers its name suggests (deployment web
// for web-7d4b9c-x2x9z, statefulset db for db-0).
func workloadsOf(ev event.Event) []workload {
	kind, name := strings.ToLower(ev.Object.Kind), ev.Object.Name
	out := []workload{{kind, name}}
	if kind == "pod" {
		for _, ctrl := range slices.Sorted(maps.Keys(podSuffix)) {
			for i := strings.IndexByte(name, '-'); i > 0; i = next(name, i) {
				if podSuffix[ctrl].MatchString(name[i+1:]) {
					out = append(out, workload{ctrl, name[:i]})
				}
			}
		}
	}
	return out
}

// addWorkloadLabels sets in l the labels alert rules name ev's workloads
// by (pod, deployment, statefulset, daemonset, job_name), where l has none.
func addWorkloadLabels(l map[string]string, ev event.Event) {
	for _, w := range workloadsOf(ev) {
		for label, kind := range workloadLabels {
			if kind == w.kind && l[label] == "" {
				l[label] = w.name
			}
		}
	}
}

// lookup returns the open alert thread in s's channel about ev's object:
// the object itself, or a pod of a controller the alert names
// (web-7d4b9c-x2x9z of deployment web).
func (t *threads) lookup(ev event.Event, s *sender) (chat.MessageRef, bool) {
	t.load()
	t.mu.Lock()
	defer t.mu.Unlock()
	recs := t.bySender[s]
	if len(recs) == 0 {
		return chat.MessageRef{}, false // the common case: no alert thread open
	}
	var wanted []string
	for _, w := range workloadsOf(ev) {
		wanted = append(wanted, workloadKey(ev.Object.Namespace, w.kind, w.name))
	}
	for _, rec := range recs {
		for _, w := range wanted {
			if slices.Contains(rec.Workloads, w) {
				return rec.Ref, true
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
func (p *Pipeline) intoThread(ctx context.Context, ev event.Event, s *sender, key string) {
	ref, ok := p.threads.lookup(ev, s)
	if !ok {
		p.transition(ctx, ev, s, key)
		return
	}
	m := p.render(ctx, ev, s)
	if ev.Transition == event.Resolved {
		m.Title = ev.Object.String() + " recovered"
		m.Level = chat.LevelSuccess
	}
	m.Thread = &ref
	acts := p.actionsFor(ev, s) // none for a resolution
	p.enqueue(s, key, func() (chat.Message, bool) { return m, true }, func(_ context.Context, _ chat.MessageRef) {
		p.triggerActions(acts, ev, s, ref)
	})
}
