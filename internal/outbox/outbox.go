// Package outbox keeps the messages the agent has queued but not yet
// delivered in a ConfigMap, so that a stop, a crash or a hand-over to the
// other replica loses none of them, and remembers the keys of messages
// delivered lately, so that a replay repeats none of them.
//
// Every message has a stable key from the moment it is queued (the
// alerting pipeline derives it from the event and the channel). Add
// records a key once; Done marks it delivered (or given up on). The leader
// writes the whole outbox soon after each change, and once more when it
// stops, in one ConfigMap update together with each source's checkpoint:
// the time before which every event that source emitted is either
// delivered or in the outbox. The next leader re-queues the pending
// entries and has each source replay from its own checkpoint; keys already
// pending or delivered are dropped, so a replay repeats nothing.
//
// Bound: the outbox's ConfigMap holds at most MaxBytes of entries. Entries
// past it stay queued in memory, are counted in
// kubechat_outbox_unsaved_total, and hold their source's checkpoint back to
// the time they were queued, so a crash replays them from the source instead.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/state"
)

// Defaults.
const (
	// FlushInterval is how often a changed outbox is written.
	FlushInterval = 250 * time.Millisecond
	// doneSpacing is the least time between two writes that a delivery
	// starts: a delivered key is written soon after its delivery, so that
	// a crash right after it repeats as little as possible, and a burst of
	// deliveries still shares its writes.
	doneSpacing = 20 * time.Millisecond
	// MaxBytes bounds the saved entries (a ConfigMap holds at most 1 MiB).
	MaxBytes = 768 << 10
	// Remember is how long delivered keys are kept for deduplication.
	Remember = 30 * time.Minute
	// MaxRemembered bounds the delivered keys kept.
	MaxRemembered = 5000
	// checkpointMargin moves the checkpoint back, so that an event a source
	// had not yet emitted when the outbox was written is replayed (its
	// key, if it was delivered after all, is remembered).
	checkpointMargin = 2 * time.Second
	dataKey          = "outbox"
)

// Entry is one queued message.
type Entry struct {
	// Key is the message's stable identity.
	Key string `json:"key"`
	// Channel names where it goes (the pipeline's sender key).
	Channel string `json:"channel"`
	// Source is the source whose event it reports; its checkpoint stays
	// before the entry while the entry is not saved.
	Source string `json:"source,omitempty"`
	// Kind and Body are the pipeline's: what to rebuild the message from.
	Kind string          `json:"kind"`
	Body json.RawMessage `json:"body"`
	// Queued is when the message was first queued.
	Queued time.Time `json:"queued"`
}

// queued is a pending entry and what Flush needs to know of it.
type queued struct {
	Entry
	size    int  // of its JSON form
	unsaved bool // counted in kubechat_outbox_unsaved_total
}

func newQueued(e Entry) *queued {
	b, _ := json.Marshal(e)
	return &queued{Entry: e, size: len(b)}
}

// document is the saved form.
type document struct {
	// Checkpoints are each source's progress.
	Checkpoints map[string]time.Time `json:"checkpoints,omitempty"`
	// Checkpoint is the one checkpoint of every source, as an agent from
	// before per-source checkpoints wrote it; a source without its own
	// replays from it.
	Checkpoint time.Time        `json:"checkpoint,omitzero"`
	Pending    []Entry          `json:"pending"`
	Delivered  map[string]int64 `json:"delivered,omitempty"` // key -> unix seconds
}

// Store is the outbox. A nil *Store keeps nothing (an agent without a
// cluster): Add always accepts and nothing survives a restart.
type Store struct {
	client    kubernetes.Interface
	namespace string
	name      string
	log       *slog.Logger
	unsaved   prometheus.Counter
	depth     prometheus.Gauge

	mu sync.Mutex
	// pending are the entries in the order queued; one whose key live no
	// longer maps to it was delivered and waits for the next compaction.
	pending   []*queued
	live      map[string]*queued
	dead      int // entries of pending no longer live
	delivered map[string]time.Time
	// checkpoints are the saved ones, by source; legacy is a checkpoint
	// of every source, from an agent before per-source checkpoints.
	checkpoints map[string]time.Time
	legacy      time.Time
	// tracked are the sources whose checkpoints this process writes (each
	// was held once); held are those still replaying.
	tracked map[string]bool
	held    map[string]bool
	dirty   bool
	// kick wakes Run when a key was delivered.
	kick chan struct{}
	// interval is FlushInterval (tests lengthen it).
	interval time.Duration
}

// New returns an outbox kept in the ConfigMap namespace/name. Call Load
// before use. Without a client (an agent without a cluster) it is kept in
// memory only: it carries queued messages over a config reload, which
// hands them from one pipeline to the next, but not over a restart.
func New(client kubernetes.Interface, namespace, name string, reg prometheus.Registerer, log *slog.Logger) *Store {
	return &Store{
		client: client, namespace: namespace, name: name, log: log,
		unsaved: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "kubechat_outbox_unsaved_total",
			Help: "Queued messages the outbox could not save because it was full; a crash would replay them from the sources.",
		}),
		depth: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "kubechat_outbox_pending",
			Help: "Messages queued and not yet delivered, as the outbox holds them.",
		}),
		live: map[string]*queued{}, delivered: map[string]time.Time{}, kick: make(chan struct{}, 1),
		checkpoints: map[string]time.Time{}, tracked: map[string]bool{}, held: map[string]bool{},
		interval: FlushInterval,
	}
}

// Load reads the outbox; a missing ConfigMap is an empty outbox.
func (s *Store) Load(ctx context.Context) error {
	if s == nil || s.client == nil {
		return nil
	}
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load outbox %s/%s: %w", s.namespace, s.name, err)
	}
	var doc document
	if raw := cm.Data[dataKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &doc); err != nil {
			// An outbox that cannot be read must not be overwritten silently.
			return fmt.Errorf("load outbox %s/%s: %w", s.namespace, s.name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending, s.live, s.dead, s.delivered = nil, map[string]*queued{}, 0, map[string]time.Time{}
	for _, e := range doc.Pending {
		if s.live[e.Key] != nil {
			continue
		}
		q := newQueued(e)
		s.pending = append(s.pending, q)
		s.live[e.Key] = q
	}
	for k, t := range doc.Delivered {
		s.delivered[k] = time.Unix(t, 0)
	}
	s.checkpoints = map[string]time.Time{}
	for src, t := range doc.Checkpoints {
		s.checkpoints[src] = t
	}
	s.legacy = doc.Checkpoint
	s.depth.Set(float64(len(s.live)))
	return nil
}

// Checkpoint is the time from which source replays: its own checkpoint,
// else the one an older agent kept for every source, else zero (no
// replay: a source new to the config reports nothing that came before it).
func (s *Store) Checkpoint(source string) time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpointOf(source)
}

func (s *Store) checkpointOf(source string) time.Time {
	if t, ok := s.checkpoints[source]; ok {
		return t
	}
	return s.legacy
}

// Hold keeps source's checkpoint where it is until Release(source): the
// source replays from it, and until its replay is queued the checkpoint
// must not move past it. From then on this process writes the source's
// checkpoint.
func (s *Store) Hold(source string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.tracked[source], s.held[source] = true, true
	s.mu.Unlock()
}

// Release lets source's checkpoint move again (its replay is queued).
func (s *Store) Release(source string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	delete(s.held, source)
	s.dirty = true
	s.mu.Unlock()
}

// Pending returns the entries not yet delivered, oldest first.
func (s *Store) Pending() []Entry {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.live))
	for _, q := range s.pending {
		if s.live[q.Key] == q {
			out = append(out, q.Entry)
		}
	}
	return out
}

// Add records e unless its key is pending or was delivered; it reports
// whether e was new, so that the caller queues it only then.
func (s *Store) Add(e Entry) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[e.Key] != nil {
		return false
	}
	if _, ok := s.delivered[e.Key]; ok {
		return false
	}
	if e.Queued.IsZero() {
		e.Queued = time.Now()
	}
	q := newQueued(e)
	s.pending = append(s.pending, q)
	s.live[e.Key] = q
	s.dirty = true
	s.depth.Set(float64(len(s.live)))
	return true
}

// Delivered reports whether key was delivered lately (within Remember).
func (s *Store) Delivered(key string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.delivered[key]
	return ok
}

// Done marks key delivered (or given up on): it leaves the outbox and is
// remembered, so that a replay does not queue it again.
func (s *Store) Done(key string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[key] != nil {
		delete(s.live, key)
		// Compacted once half is gone: a backlog drains in linear time.
		if s.dead++; s.dead > len(s.pending)/2 {
			s.pending = slices.DeleteFunc(s.pending, func(q *queued) bool { return s.live[q.Key] != q })
			s.dead = 0
		}
	}
	s.delivered[key] = time.Now()
	s.dirty = true
	s.depth.Set(float64(len(s.live)))
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run writes the outbox whenever it changed, until ctx ends: what was
// queued within FlushInterval, what was delivered within doneSpacing
// (a crash between a delivery and the write that records it would send
// that message again). The owner calls Flush once more after the last
// delivery.
func (s *Store) Run(ctx context.Context) {
	if s == nil {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		err := s.Flush(ctx, false)
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil && !failing:
			failing = true
			s.log.Warn("outbox not saved; retrying until it is", "err", err)
		case err != nil:
			s.log.Debug("outbox still not saved", "err", err)
		case failing:
			failing = false
			s.log.Info("outbox saved again")
		}
		pause := doneSpacing
		if err != nil {
			pause = s.interval // the API server is not keeping up: no faster than the ticker
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// Flush writes the outbox and the checkpoints now (always, with force;
// else only if something changed).
func (s *Store) Flush(ctx context.Context, force bool) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if !s.dirty && !force {
		s.mu.Unlock()
		return nil
	}
	now := time.Now()
	doc := document{Checkpoints: map[string]time.Time{}, Delivered: map[string]int64{}}
	for src := range s.tracked {
		if s.held[src] {
			// The source is still replaying from its old checkpoint.
			if t := s.checkpointOf(src); !t.IsZero() {
				doc.Checkpoints[src] = t
			}
			continue
		}
		doc.Checkpoints[src] = now.Add(-checkpointMargin).UTC()
	}
	size := 0
	for _, e := range s.pending {
		if s.live[e.Key] != e {
			continue
		}
		if size+e.size > MaxBytes {
			// Not saved: a crash must replay it, so its source's checkpoint stays before it.
			if !e.unsaved {
				e.unsaved = true
				s.unsaved.Inc()
			}
			q := e.Queued.Add(-checkpointMargin).UTC()
			for src, t := range doc.Checkpoints {
				if (e.Source == "" || e.Source == src) && q.Before(t) {
					doc.Checkpoints[src] = q
				}
			}
			continue
		}
		size += e.size
		doc.Pending = append(doc.Pending, e.Entry)
	}
	for k, t := range s.delivered {
		if now.Sub(t) > Remember {
			delete(s.delivered, k)
		}
	}
	if len(s.delivered) > MaxRemembered {
		keys := make([]string, 0, len(s.delivered))
		for k := range s.delivered {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return s.delivered[a].Compare(s.delivered[b]) })
		for _, k := range keys[:len(keys)-MaxRemembered] {
			delete(s.delivered, k)
		}
	}
	for k, t := range s.delivered {
		doc.Delivered[k] = t.Unix()
	}
	s.dirty = false
	s.mu.Unlock()
	body, err := json.Marshal(doc)
	if err == nil {
		err = s.write(ctx, string(body))
	}
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	for src, t := range doc.Checkpoints {
		s.checkpoints[src] = t
	}
	s.mu.Unlock()
	return nil
}

func (s *Store) write(ctx context.Context, body string) error {
	if s.client == nil {
		return nil // in memory only
	}
	err := state.RetryWrite(func() error {
		cms := s.client.CoreV1().ConfigMaps(s.namespace)
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "kubechat"}}, Data: map[string]string{dataKey: body}}
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[dataKey] = body
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("save outbox %s/%s: %w", s.namespace, s.name, err)
	}
	return nil
}
