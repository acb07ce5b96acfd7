package state

import (
	"context"
	"sync"
)

// Memory is a key-value state kept in this process only: what an agent
// without a cluster uses in place of the ConfigMap store. Nothing in it
// survives a restart.
type Memory struct {
	mu sync.Mutex
	m  map[string]string
}

// NewMemory returns an empty in-process state.
func NewMemory() *Memory { return &Memory{m: map[string]string{}} }

// Get returns the value of key.
func (s *Memory) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Set writes key; an empty value deletes it.
func (s *Memory) Set(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		delete(s.m, key)
	} else {
		s.m[key] = value
	}
	return nil
}
