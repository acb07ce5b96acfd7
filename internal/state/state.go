// Package state keeps small pieces of agent state (per-channel switches,
// transition records) in one ConfigMap, so that they survive restarts and
// leader changes. Reads come from memory; writes go to the API server first,
// with a retry on conflict, and then to memory.
package state

import (
	"context"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Store is a key-value map persisted in a ConfigMap.
type Store struct {
	client    kubernetes.Interface
	namespace string
	name      string

	mu   sync.RWMutex
	data map[string]string
}

// New returns a store backed by the ConfigMap namespace/name. Call Load before use.
func New(client kubernetes.Interface, namespace, name string) *Store {
	return &Store{client: client, namespace: namespace, name: name, data: map[string]string{}}
}

// Load reads the ConfigMap; a missing one is an empty store.
func (s *Store) Load(ctx context.Context) error {
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load state %s/%s: %w", s.namespace, s.name, err)
	}
	s.mu.Lock()
	s.data = maps.Clone(cm.Data)
	if s.data == nil {
		s.data = map[string]string{}
	}
	s.mu.Unlock()
	return nil
}

// Get returns the value of key.
func (s *Store) Get(key string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok
}

// Set writes key=value (or deletes key when value is "") to the ConfigMap, creating it if needed.
func (s *Store) Set(ctx context.Context, key, value string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cms := s.client.CoreV1().ConfigMaps(s.namespace)
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "kubechat"}}}
			apply(cm, key, value)
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		apply(cm, key, value)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("save state %s/%s: %w", s.namespace, s.name, err)
	}
	s.mu.Lock()
	apply(&corev1.ConfigMap{Data: s.data}, key, value)
	s.mu.Unlock()
	return nil
}

func apply(cm *corev1.ConfigMap, key, value string) {
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	if value == "" {
		delete(cm.Data, key)
		return
	}
	cm.Data[key] = value
}
