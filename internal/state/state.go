// Package state keeps small pieces of agent state (per-channel switches,
// transition records) in one ConfigMap, so that they survive restarts and
// leader changes. Reads come from memory; writes go to the API server first,
// with a retry on conflict, and then to memory. Watch keeps memory in step
// with the ConfigMap, so that what one replica writes the other sees.
package state

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// Store is a key-value map persisted in a ConfigMap.
type Store struct {
	client    kubernetes.Interface
	namespace string
	name      string
	// writeMu makes this process's writes take turns, so that they never
	// conflict with each other; another replica's still may.
	writeMu sync.Mutex

	mu   sync.RWMutex
	data map[string]string
	// version is the resourceVersion data is from; an older one from the
	// watch does not overwrite it.
	version string
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
	s.replace(cm)
	return nil
}

// replace takes cm's data unless memory holds a newer version.
func (s *Store) replace(cm *corev1.ConfigMap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if older(cm.ResourceVersion, s.version) {
		return
	}
	s.data, s.version = maps.Clone(cm.Data), cm.ResourceVersion
	if s.data == nil {
		s.data = map[string]string{}
	}
}

// older reports whether resource version a comes before b. Versions are
// opaque strings; the API server's are etcd revisions, compared as numbers.
func older(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x < y
}

// Watch keeps the store in step with its ConfigMap until ctx ends: writes
// of the other replica (a Teams conversation reference, a switch) are
// seen here within moments. It is a runnable.
func (s *Store) Watch(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 0, informers.WithNamespace(s.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.name).String()
		}))
	inf := factory.Core().V1().ConfigMaps().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.observe(obj) },
		UpdateFunc: func(_, obj any) { s.observe(obj) },
	})
	if err != nil {
		return fmt.Errorf("watch state %s/%s: %w", s.namespace, s.name, err)
	}
	inf.RunWithContext(ctx)
	return nil
}

func (s *Store) observe(obj any) {
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		s.replace(cm)
	}
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
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var saved *corev1.ConfigMap
	err := RetryWrite(func() error {
		cms := s.client.CoreV1().ConfigMaps(s.namespace)
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "kubechat"}}}
			apply(cm, key, value)
			saved, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		apply(cm, key, value)
		saved, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("save state %s/%s: %w", s.namespace, s.name, err)
	}
	s.mu.Lock()
	apply(&corev1.ConfigMap{Data: s.data}, key, value)
	if saved != nil && !older(saved.ResourceVersion, s.version) {
		s.version = saved.ResourceVersion
	}
	s.mu.Unlock()
	return nil
}

// Update changes key to what f makes of its current value, reading the
// ConfigMap from the API server and writing it back only if nobody wrote
// in between (else f runs again on the newer value): a compare-and-swap,
// so that two replicas cannot both claim the same entry. An error from f
// is returned as it is and writes nothing.
func (s *Store) Update(ctx context.Context, key string, f func(old string, ok bool) (string, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var saved *corev1.ConfigMap
	var value string
	err := RetryWrite(func() error {
		cms := s.client.CoreV1().ConfigMaps(s.namespace)
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		missing := apierrors.IsNotFound(err)
		if err != nil && !missing {
			return err
		}
		if missing {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: s.namespace,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "kubechat"}}}
		}
		old, ok := cm.Data[key]
		if value, err = f(old, ok); err != nil {
			return err
		}
		apply(cm, key, value)
		if missing {
			saved, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			saved, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		return err
	})
	if err != nil {
		return err
	}
	s.replace(saved)
	return nil
}

// Prune deletes, in one write, every key for which drop is true.
func (s *Store) Prune(ctx context.Context, drop func(key, value string) bool) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var saved *corev1.ConfigMap
	err := RetryWrite(func() error {
		cms := s.client.CoreV1().ConfigMaps(s.namespace)
		cm, err := cms.Get(ctx, s.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		n := len(cm.Data)
		maps.DeleteFunc(cm.Data, drop)
		if len(cm.Data) == n {
			return nil
		}
		saved, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("prune state %s/%s: %w", s.namespace, s.name, err)
	}
	if saved != nil {
		s.replace(saved)
	}
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

// writeBackoff gives a write about 2 s of tries against other writers.
var writeBackoff = wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 1.6, Jitter: 0.5}

// RetryWrite runs a read-modify-write of a ConfigMap again when another
// writer got in between: an update that conflicts, or a create that finds
// the ConfigMap made meanwhile (two first writes at once).
func RetryWrite(write func() error) error {
	return retry.OnError(writeBackoff, func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
	}, write)
}
