package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Repeated events (the same object, reason and source) within GroupWindow
// become one message whose count is edited in place.

// GroupWindow is how long repeats of an event fold into its first message.
const GroupWindow = 10 * time.Minute

// groupFlushInterval is how often counts of grouped messages are updated.
const groupFlushInterval = 2 * time.Second

type group struct {
	ev    event.Event
	first time.Time
	count int
	dirty bool
	refs  map[*sender]chat.MessageRef
}

// groupOf returns the open group of ev, opening one if there is none.
func (p *Pipeline) groupOf(ev event.Event) *group {
	p.groupMu.Lock()
	defer p.groupMu.Unlock()
	if g, ok := p.groups[ev.Fingerprint()]; ok {
		return g
	}
	g := &group{ev: ev, first: time.Now(), count: 1, refs: map[*sender]chat.MessageRef{}}
	p.groups[ev.Fingerprint()] = g
	return g
}

// grouped reports whether ev repeats an open group (and counts it), or
// opens a new group for it.
func (p *Pipeline) grouped(ev event.Event) (*group, bool) {
	p.groupMu.Lock()
	defer p.groupMu.Unlock()
	fp := ev.Fingerprint()
	if g, ok := p.groups[fp]; ok && time.Since(g.first) < GroupWindow {
		g.count++
		g.dirty = true
		g.ev.Message = ev.Message
		return g, true
	}
	g := &group{ev: ev, first: time.Now(), count: 1, refs: map[*sender]chat.MessageRef{}}
	p.groups[fp] = g
	return g, false
}

func (p *Pipeline) flushGroups(ctx context.Context) {
	t := time.NewTicker(groupFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.opts.Health.Beat("alerting")
		p.groupMu.Lock()
		for fp, g := range p.groups {
			if g.dirty {
				g.dirty = false
				ev := g.ev
				ev.Count = g.count
				for _, s := range p.sendersFor(ev) {
					m := p.baseMessage(ev, s)
					p.enqueue(s, MessageKey(ev, s.b)+fmt.Sprintf(".%d", ev.Count), func() (chat.Message, bool) {
						p.groupMu.Lock()
						ref, ok := g.refs[s]
						p.groupMu.Unlock()
						m.Replace = &ref
						return m, ok
					}, nil)
				}
			}
			if time.Since(g.first) > GroupWindow && !g.dirty {
				delete(p.groups, fp)
			}
		}
		p.groupMu.Unlock()
	}
}
