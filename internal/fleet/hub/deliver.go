package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/fleet"
)

// delivered is what the bucket records for a message: where it went
// (empty when it was given up on).
type delivered struct {
	Ref   chat.MessageRef `json:"ref"`
	Given bool            `json:"givenUp,omitempty"`
}

// bucketKey is the bucket's key of message id from cluster.
func bucketKey(cluster, id string) string {
	sum := sha256.Sum256([]byte(id))
	return "m." + cluster + "." + hex.EncodeToString(sum[:16])
}

// take handles one message of cluster's stream.
func (h *Hub) take(cluster string, m jetstream.Msg) {
	if h.stopping.Load() {
		_ = m.Nak() // the next leader takes it
		return
	}
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if id == "" {
		h.log.Error("message without an id dropped", "cluster", cluster)
		h.ack(m)
		return
	}
	key := bucketKey(cluster, id)
	h.mu.Lock()
	if h.inflight[key] {
		h.mu.Unlock()
		// Still queued here: keep it ours.
		_ = m.InProgress()
		return
	}
	_, done := h.refs[key]
	h.mu.Unlock()
	if done || h.recorded(key) {
		h.metrics.duplicate(cluster)
		h.ack(m)
		return
	}
	var p fleet.Post
	if err := json.Unmarshal(m.Data(), &p); err != nil {
		h.log.Error("unreadable message dropped", "cluster", cluster, "err", err)
		h.ack(m)
		return
	}
	q, err := h.queueFor(cluster, p)
	if err != nil {
		h.log.Error("message refused", "cluster", cluster, "err", err)
		h.ack(m)
		return
	}
	h.mu.Lock()
	h.inflight[key] = true
	h.mu.Unlock()
	published := time.Now()
	if md, err := m.Metadata(); err == nil {
		published = md.Timestamp
	}
	q.Enqueue(chat.Job{
		Build: func() (chat.Message, bool) { return h.translate(cluster, p.Message), true },
		Done: func(ctx context.Context, ref chat.MessageRef, err error) {
			defer func() {
				h.mu.Lock()
				delete(h.inflight, key)
				h.mu.Unlock()
			}()
			if errors.Is(err, chat.ErrDeferred) {
				// The hub stops: the next one takes it.
				_ = m.Nak()
				return
			}
			if err == nil {
				h.metrics.latency.WithLabelValues(cluster).Observe(time.Since(published).Seconds())
			}
			if h.record(ctx, key, delivered{Ref: ref, Given: err != nil}) {
				h.ack(m)
			}
		},
	})
}

// queueFor is the queue of p's channel, if cluster may post there.
func (h *Hub) queueFor(cluster string, p fleet.Post) (*chat.Queue, error) {
	k := channelKey(p.Platform, p.Channel.ID)
	ch, ok := h.channels[k]
	if !ok {
		return nil, errors.New("no channel " + p.Channel.ID + " on platform " + p.Platform + " in the hub's config")
	}
	if !slices.Contains(ch.Clusters, cluster) {
		return nil, errors.New("cluster " + cluster + " may not post to channel " + ch.Name + " (channels[].clusters)")
	}
	return h.queues[k], nil
}

// translate swaps the agent's refs in m (the message it edits, the thread
// it replies in) for the chat platform's. An edit of a message that was
// never delivered is posted as a new message; a reply in such a thread,
// at the top.
func (h *Hub) translate(cluster string, m chat.Message) chat.Message {
	if m.Replace != nil {
		if ref, ok := h.resolve(cluster, m.Replace.ID); ok {
			m.Replace = &ref
		} else if _, agents := fleet.PublishedID(m.Replace.ID); agents {
			m.Replace = nil
		}
	}
	if m.Thread != nil {
		root := m.Thread.Root()
		if ref, ok := h.resolve(cluster, root); ok {
			ref.ID = ref.Root()
			ref.Thread = ""
			m.Thread = &ref
		} else if _, agents := fleet.PublishedID(root); agents {
			m.Thread = nil
		}
	}
	return m
}

// resolve returns the chat ref of the message an agent's ref id stands for.
func (h *Hub) resolve(cluster, refID string) (chat.MessageRef, bool) {
	id, ok := fleet.PublishedID(refID)
	if !ok {
		return chat.MessageRef{}, false
	}
	key := bucketKey(cluster, id)
	h.mu.Lock()
	ref, ok := h.refs[key]
	h.mu.Unlock()
	if ok {
		return ref, ref.ID != ""
	}
	d, ok := h.lookup(key)
	return d.Ref, ok && d.Ref.ID != ""
}

func (h *Hub) recorded(key string) bool {
	_, ok := h.lookup(key)
	return ok
}

func (h *Hub) lookup(key string) (delivered, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := h.kv.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			h.log.Warn("delivery record not read", "err", err)
		}
		return delivered{}, false
	}
	var d delivered
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return delivered{}, false
	}
	return d, true
}

// recordFor bounds how long the hub retries recording one delivery (NATS
// is away) before it leaves the message unacknowledged.
const recordFor = time.Minute

// record keeps d in memory at once, and in the bucket, retrying for
// recordFor; it reports whether the bucket has it, so that only then is
// the message acknowledged. A record the bucket lacks stays in memory: a
// redelivery to this process is still dropped (one to the next hub would
// be posted again, and is logged here).
func (h *Hub) record(ctx context.Context, key string, d delivered) bool {
	h.mu.Lock()
	h.refs[key] = d.Ref
	h.mu.Unlock()
	body, _ := json.Marshal(d)
	deadline := time.Now().Add(recordFor)
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := h.kv.Put(pctx, key, body)
		cancel()
		if err == nil {
			h.mu.Lock()
			delete(h.refs, key) // the bucket has it
			h.mu.Unlock()
			return true
		}
		if attempt == 0 {
			h.log.Warn("delivery not recorded yet; retrying", "err", err)
		}
		if time.Now().After(deadline) {
			h.log.Error("delivery not recorded; the message stays unacknowledged", "err", err)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

func (h *Hub) ack(m jetstream.Msg) {
	if err := m.Ack(); err != nil {
		h.log.Debug("ack not sent; JetStream hands the message out again and the hub drops it", "err", err)
	}
}
