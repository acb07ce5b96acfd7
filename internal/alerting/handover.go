package alerting

import (
	"context"
	"fmt"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/event"
)

// A config reload that changes what the pipeline routes builds a new
// pipeline and hands over to it as a new leader would: the old one drains
// and stops (what it could not deliver stays in the outbox), and the new
// one replays the outbox before it takes events. TakeOver carries over the
// little the old one kept only in memory.

// TakeOver carries over from old, the pipeline this one replaces, what old
// kept only in memory: the actions queued and not yet started, which run
// here and reply through this pipeline's queues; and the open groups of
// repeated warnings, so that repeats keep folding into the messages
// already posted in the channels both pipelines have. A group with
// repeats gets its count edited again: an edit the old pipeline had
// queued did not survive its stop. Call it after old stopped and before
// Replay.
func (p *Pipeline) TakeOver(old *Pipeline) {
	for _, f := range old.followUps.takeAll() {
		p.followUps.push(f)
	}
	old.groupMu.Lock()
	defer old.groupMu.Unlock()
	p.groupMu.Lock()
	defer p.groupMu.Unlock()
	for fp, g := range old.groups {
		ng := &group{ev: g.ev, first: g.first, count: g.count, dirty: g.dirty || g.count > 1, refs: map[*sender]chat.MessageRef{}}
		for s, ref := range g.refs {
			if ns, ok := p.senders[senderKey(s.b)]; ok {
				ng.refs[ns] = ref
			}
		}
		p.groups[fp] = ng
	}
}

// Notice queues ev, the agent's own news (a config reload that failed), as
// a message to the configured channel named channel, whatever its
// bindings and its notification switch say. Like an alert it is recorded
// in the outbox first, under a key derived from ev.ID, so a notice with
// the same ID is sent once.
func (p *Pipeline) Notice(ctx context.Context, channel string, ev event.Event) error {
	for _, s := range p.senders {
		if s.b.channel.Name == channel {
			p.queue(ctx, ev, s, kindEvent, nil)
			return nil
		}
	}
	return fmt.Errorf("notice to channel %q: no such channel", channel)
}
