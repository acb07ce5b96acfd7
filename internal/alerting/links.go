package alerting

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// Links back: a sink that links to an alert's chat messages
// (chat.BackLinker: PagerDuty) is sent the same event's message only after
// that event's chat deliveries finished, or LinkWait after it was queued,
// whichever comes first. Its message then carries the permalinks of the
// chat messages delivered by then (chat.Permalinker). The wait holds only
// the sink's own queue, never a chat one, and a chat outage delays paging
// by LinkWait at most: past it, the sink sends without the links it lacks.
// Each message keeps its key, so delivery stays once.

// LinkWait bounds how long a sink that links back waits for the same
// event's chat messages, from when the event was queued, unless
// Options.LinkWait says otherwise.
const LinkWait = 5 * time.Second

// linkGroup is one event's chat deliveries that its sinks' messages wait
// for.
type linkGroup struct {
	deadline time.Time
	done     chan struct{} // closed once every chat delivery finished

	mu      sync.Mutex
	pending int
	links   []chat.Link
}

// finish records one chat delivery's outcome: its link, or none.
func (g *linkGroup) finish(l *chat.Link) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if l != nil {
		g.links = append(g.links, *l)
	}
	if g.pending--; g.pending == 0 {
		close(g.done)
	}
}

// wait returns the links of the chat messages delivered once all were,
// or by the deadline.
func (g *linkGroup) wait() []chat.Link {
	t := time.NewTimer(time.Until(g.deadline))
	defer t.Stop()
	select {
	case <-g.done:
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := slices.Clone(g.links)
	slices.SortFunc(out, func(a, b chat.Link) int { return cmp.Compare(a.Text, b.Text) })
	return out
}

// links are the link groups of events being queued, by message key: a
// group is looked up by its messages' keys while the event's messages are
// queued (Emit, Replay), and forgotten right after.
type links struct {
	// some is set when a sink that links back is bound: without one,
	// nothing here costs anything.
	some bool

	mu    sync.Mutex
	byKey map[string]linkSlot
}

// linkSlot is one queued message's place in its event's link group.
type linkSlot struct {
	g *linkGroup
	// giver is set for a chat message the group waits for.
	giver bool
}

// linkRole is what a sender's messages do in a link group.
type linkRole int

const (
	linkNone  linkRole = iota
	linkGiver          // a chat platform whose messages have permalinks
	linkTaker          // a sink that links back
)

func roleOf(s *sender) linkRole {
	switch s.b.platform.(type) {
	case chat.BackLinker:
		return linkTaker
	case chat.Permalinker:
		return linkGiver
	}
	return linkNone
}

// linkEntry is one message of an event about to be queued.
type linkEntry struct {
	s   *sender
	key string
}

// expect opens a link group for one event's messages when a sink among
// them links back and a chat platform among them has permalinks, and
// returns what forget needs.
func (p *Pipeline) expectLinks(entries []linkEntry) []string {
	if !p.links.some {
		return nil
	}
	roles := make([]linkRole, len(entries))
	var givers, takers int
	for i, e := range entries {
		roles[i] = roleOf(e.s)
		switch roles[i] {
		case linkGiver:
			givers++
		case linkTaker:
			takers++
		}
	}
	if givers == 0 || takers == 0 {
		return nil
	}
	g := &linkGroup{deadline: time.Now().Add(p.opts.LinkWait), done: make(chan struct{}), pending: givers}
	p.links.mu.Lock()
	defer p.links.mu.Unlock()
	if p.links.byKey == nil {
		p.links.byKey = map[string]linkSlot{}
	}
	keys := make([]string, 0, len(entries))
	for i, e := range entries {
		if roles[i] != linkNone {
			p.links.byKey[e.key] = linkSlot{g: g, giver: roles[i] == linkGiver}
			keys = append(keys, e.key)
		}
	}
	return keys
}

// forgetLinks closes the registration expectLinks made: a chat message
// that was not queued (a replay's duplicate) counts as delivered without a
// link, so no sink waits for it.
func (p *Pipeline) forgetLinks(keys []string) {
	if len(keys) == 0 {
		return
	}
	p.links.mu.Lock()
	defer p.links.mu.Unlock()
	for _, k := range keys {
		slot, ok := p.links.byKey[k]
		if !ok {
			continue // queued: enqueue took it
		}
		if slot.giver {
			slot.g.finish(nil)
		}
		delete(p.links.byKey, k)
	}
}

// takeLinks is the link group of the message queued under key, and whether
// that message is a chat message the group waits for.
func (p *Pipeline) takeLinks(key string) (*linkGroup, bool) {
	if !p.links.some {
		return nil, false
	}
	p.links.mu.Lock()
	defer p.links.mu.Unlock()
	slot, ok := p.links.byKey[key]
	if !ok {
		return nil, false
	}
	delete(p.links.byKey, key)
	return slot.g, slot.giver
}

// linked wraps a queued message's build and done for its link group, if
// it has one: a sink's trigger waits for the group's links; a chat
// message reports its permalink to the group once delivered (or its
// failure, at once).
func (p *Pipeline) linked(s *sender, key string, build func() (chat.Message, bool), done func(context.Context, chat.MessageRef, error)) (func() (chat.Message, bool), func(context.Context, chat.MessageRef, error)) {
	g, giver := p.takeLinks(key)
	switch {
	case g == nil:
		return build, done
	case giver:
		return build, func(ctx context.Context, ref chat.MessageRef, err error) {
			done(ctx, ref, err)
			if err != nil {
				g.finish(nil)
				return
			}
			// The permalink may cost a request (Slack): asked aside, within
			// the group's deadline, so the channel's queue goes on.
			go func() {
				lctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), g.deadline)
				defer cancel()
				url, lerr := chat.Permalink(lctx, s.b.platform, ref)
				if lerr != nil || url == "" {
					if lerr != nil {
						p.log.Warn("no link to an alert's chat message for the sinks that link back", "platform", s.b.platform.Name(), "channel", s.b.channel.Name, "err", lerr)
					}
					g.finish(nil)
					return
				}
				g.finish(&chat.Link{Text: s.b.platform.Name() + " " + s.b.channel.Name, URL: url})
			}()
		}
	default:
		return func() (chat.Message, bool) {
			m, ok := build()
			if ok && !m.Resolved {
				m.Links = g.wait()
			}
			return m, ok
		}, done
	}
}

// entriesOf are the messages of ev for senders (none when no sink links
// back, so Emit computes no keys for nothing).
func (p *Pipeline) entriesOf(ev event.Event, senders []*sender) []linkEntry {
	if !p.links.some {
		return nil
	}
	out := make([]linkEntry, len(senders))
	for i, s := range senders {
		out[i] = linkEntry{s: s, key: MessageKey(ev, s.b)}
	}
	return out
}
