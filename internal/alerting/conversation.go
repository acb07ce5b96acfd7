package alerting

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
)

// Conversations: the events that share a Thread (event.Event.Thread) are
// one conversation in each channel: the first is posted as a message, the
// later ones into its thread, and their actions reply there too. The roots
// are kept with the channel's alert threads in the state ConfigMap, the
// newest MaxConversations of each channel, so a restart or a new leader
// keeps threading.

// MaxConversations is how many conversations a channel remembers.
const MaxConversations = 500

// conversationPrefix marks a conversation's record among a channel's
// alert threads (keyed by Alertmanager groupKey, which starts with "{").
const conversationPrefix = "conversation:"

// conversation returns the root message of thread's conversation in s's
// channel, if it started.
func (t *threads) conversation(s *sender, thread string) (chat.MessageRef, bool) {
	t.load()
	t.mu.Lock()
	defer t.mu.Unlock()
	rec, ok := t.bySender[s][conversationPrefix+thread]
	return rec.Ref, ok
}

// startConversation records ref as the root of thread's conversation in
// s's channel and forgets the oldest beyond MaxConversations.
func (t *threads) startConversation(ctx context.Context, s *sender, thread string, ref chat.MessageRef) {
	t.load()
	t.mu.Lock()
	m := t.bySender[s]
	if m == nil {
		m = map[string]threadRecord{}
		t.bySender[s] = m
	}
	m[conversationPrefix+thread] = threadRecord{Ref: ref, At: time.Now().UnixNano()}
	var convs []string
	for k := range m {
		if strings.HasPrefix(k, conversationPrefix) {
			convs = append(convs, k)
		}
	}
	if len(convs) > MaxConversations {
		slices.SortFunc(convs, func(a, b string) int { return cmp.Compare(m[a].At, m[b].At) })
		for _, k := range convs[:len(convs)-MaxConversations] {
			delete(m, k)
		}
	}
	t.saveAndUnlock(ctx, s)
}
