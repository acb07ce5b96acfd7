package ai

import (
	"container/list"
	"context"
	"regexp"
	"slices"
	"sync"
	"unicode/utf8"

	"k8s.io/client-go/kubernetes"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/redact"
)

// exchange is one remembered question and its answer.
type exchange struct{ question, answer string }

func (x exchange) size() int { return len(x.question) + len(x.answer) }

// memory keeps the last exchanges of each thread, within entries and bytes
// per thread and a number of threads, forgetting the oldest first. It
// lives in the agent's memory only: a restart forgets every conversation.
type memory struct {
	mu      sync.Mutex
	entries int
	bytes   int
	threads int
	byKey   map[string]*list.Element
	order   *list.List // of *thread, least recently used at the front
}

type thread struct {
	key       string
	exchanges []exchange
}

func newMemory(m Memory) *memory {
	return &memory{entries: m.Entries, bytes: m.Bytes, threads: m.Threads, byKey: map[string]*list.Element{}, order: list.New()}
}

// get returns a copy of the thread's exchanges, oldest first.
func (m *memory) get(key string) []exchange {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.byKey[key]; ok {
		m.order.MoveToBack(el)
		return slices.Clone(el.Value.(*thread).exchanges)
	}
	return nil
}

// add remembers x in the thread and evicts what no longer fits: the
// thread's oldest exchanges, then the least recently used threads.
func (m *memory) add(key string, x exchange) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x.size() > m.bytes {
		x.answer = cut(x.answer, max(0, m.bytes-len(x.question)))
		x.question = cut(x.question, m.bytes)
	}
	el, ok := m.byKey[key]
	if !ok {
		el = m.order.PushBack(&thread{key: key})
		m.byKey[key] = el
	}
	m.order.MoveToBack(el)
	t := el.Value.(*thread)
	t.exchanges = append(t.exchanges, x)
	for len(t.exchanges) > m.entries || total(t.exchanges) > m.bytes {
		t.exchanges = t.exchanges[1:]
	}
	for m.order.Len() > m.threads {
		oldest := m.order.Front()
		m.order.Remove(oldest)
		delete(m.byKey, oldest.Value.(*thread).key)
	}
}

func total(xs []exchange) int {
	n := 0
	for _, x := range xs {
		n += x.size()
	}
	return n
}

// cut is s cut to n bytes at a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// masker replaces, in everything one question sends, the values of the
// Secrets of every namespace a tool looked into (read with the agent's own
// identity, never shown to anyone), and the configured patterns.
type masker struct {
	cs       kubernetes.Interface
	patterns []*regexp.Regexp
	set      *redact.Set
	loaded   map[string]error
}

func newMasker(cs kubernetes.Interface, patterns []*regexp.Regexp) *masker {
	return &masker{cs: cs, patterns: patterns, set: redact.NewSet(), loaded: map[string]error{}}
}

// load records the values of the Secrets in namespace. An error means
// they are unknown, and nothing from that namespace may be sent.
func (m *masker) load(ctx context.Context, namespace string) error {
	if namespace == "" {
		return nil
	}
	if err, ok := m.loaded[namespace]; ok {
		return err
	}
	err := executor.RecordSecrets(ctx, m.cs, namespace, m.set)
	m.loaded[namespace] = err
	return err
}

// mask replaces every known Secret value and every pattern's match.
func (m *masker) mask(text string) string {
	text = m.set.Redact(text)
	for _, re := range m.patterns {
		text = re.ReplaceAllString(text, redact.Mask)
	}
	return text
}
