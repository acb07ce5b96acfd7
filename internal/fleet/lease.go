package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderBucket is the key-value bucket that holds the hub's lease.
const LeaderBucket = "kubechat-hub-leader"

// Keys of LeaderBucket: the lock, and where its holder is reached.
const (
	leaseKey   = "leader"
	addressKey = "address"
)

// address is where the leading hub is reached over HTTP, so that another
// replica hands it the inbound requests (webhooks) it receives.
type address struct {
	Identity string `json:"identity"`
	URL      string `json:"url"`
}

// ErrLeaseLost is what Lease.Run returns when this hub stopped leading
// because it could not renew its lease in time: another hub may lead now.
var ErrLeaseLost = errors.New("lost the hub's lease: another hub may lead now")

// Lease elects one leader among a fleet's hubs with client-go's leader
// election, the agent's algorithm, over a lock kept in a JetStream
// key-value bucket instead of a Kubernetes Lease, so that the hub needs no
// Kubernetes access at all. The lock's writes are compare-and-set on the
// key's revision; with NATS replicated (3 servers) the bucket is too, so
// the lock is as consistent as JetStream's RAFT.
type Lease struct {
	lock     *kvLock
	duration time.Duration
	log      *slog.Logger
	// Leading, when set, is told when this hub starts and stops leading.
	Leading func(bool)
	// URL, when set, is where this hub is reached over HTTP: it says so
	// while it leads (see Leader).
	URL string
}

// Leader returns the leading hub's URL, when a hub leads and said where
// it is reached. It reads the bucket itself, leaving the lock's state to
// the election.
func (l *Lease) Leader(ctx context.Context) (string, error) {
	e, err := l.lock.kv.Get(ctx, leaseKey)
	if err != nil {
		return "", err
	}
	var rec resourcelock.LeaderElectionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", err
	}
	if e, err = l.lock.kv.Get(ctx, addressKey); err != nil {
		return "", err
	}
	var a address
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return "", err
	}
	if rec.HolderIdentity == "" || a.Identity != rec.HolderIdentity {
		return "", nil // the leader has not said where it is yet
	}
	return a.URL, nil
}

// NewLease makes sure the bucket exists (kept in replicas copies) and
// returns the lease of the hub called identity. A leader renews every
// duration/6, steps down after 2/3 of it without a renewal, and a standby
// takes over once duration passed without one (at once after the leader
// gave the lease up on a clean stop).
func NewLease(ctx context.Context, js jetstream.JetStream, identity string, duration time.Duration, replicas int, log *slog.Logger) (*Lease, error) {
	if duration < 3*time.Second {
		return nil, fmt.Errorf("lease duration %s: must be at least 3s", duration)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LeaderBucket, Description: "kubechat hub: which hub leads",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", LeaderBucket, err)
	}
	return &Lease{lock: &kvLock{kv: kv, identity: identity, log: log}, duration: duration, log: log}, nil
}

// Run campaigns until this hub leads, then runs lead with a context that
// ends when the lease is lost or ctx ends. The lease is given up only
// after lead returned, so that the next hub starts once this one is done.
// It returns nil when ctx ended, ErrLeaseLost when the lease was lost (the
// hub then exits and restarts as a standby, as the agent does), and
// lead's error if lead failed.
func (l *Lease) Run(ctx context.Context, lead func(context.Context) error) error {
	// The election outlives ctx until lead is done.
	ectx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var leadErr error
	leadDone := make(chan struct{})
	el, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            l.lock,
		Name:            LeaderBucket,
		LeaseDuration:   l.duration,
		RenewDeadline:   l.duration * 2 / 3,
		RetryPeriod:     l.duration / 6,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				defer close(leadDone)
				defer stopElection() // gives the lease up, now that lead is done
				lctx, cancel := context.WithCancel(lctx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				l.log.Info("leading the fleet's hubs", "identity", l.lock.identity)
				if l.URL != "" {
					body, _ := json.Marshal(address{Identity: l.lock.identity, URL: l.URL})
					if _, err := l.lock.kv.Put(lctx, addressKey, body); err != nil {
						l.log.Warn("cannot say where the leading hub is; the other replica answers webhooks 503 until it knows", "err", err)
					}
				}
				l.leading(true)
				defer l.leading(false)
				err := lead(lctx)
				switch {
				case ctx.Err() != nil:
					leadErr = nil // a clean stop
				case err != nil && !errors.Is(err, context.Canceled):
					leadErr = err
				default:
					leadErr = ErrLeaseLost
				}
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	// Not leading yet when ctx ends: stop campaigning.
	defer context.AfterFunc(ctx, func() {
		if !l.lock.held.Load() {
			stopElection()
		}
	})()
	el.Run(ectx)
	if !l.lock.held.Load() {
		return nil
	}
	<-leadDone
	return leadErr
}

func (l *Lease) leading(on bool) {
	if l.Leading != nil {
		l.Leading(on)
	}
}

// kvLock is client-go's resource lock over the bucket's one key.
type kvLock struct {
	kv       jetstream.KeyValue
	identity string
	log      *slog.Logger

	mu     sync.Mutex
	rev    uint64 // the key's revision last read or written
	holder string // the holder last read
	// held is set once this hub wrote itself in as the holder: from then
	// on, the elector runs OnStartedLeading.
	held atomic.Bool
}

var _ resourcelock.Interface = (*kvLock)(nil)

// Get reads the record; a missing key is a NotFound, as the elector
// expects from a Lease that does not exist yet.
func (k *kvLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	e, err := k.kv.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Group: "jetstream", Resource: "kv"}, k.Describe())
	}
	if err != nil {
		return nil, nil, err
	}
	var rec resourcelock.LeaderElectionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", k.Describe(), err)
	}
	k.mu.Lock()
	k.rev = e.Revision()
	changed := rec.HolderIdentity != k.holder
	k.holder = rec.HolderIdentity
	k.mu.Unlock()
	if changed && rec.HolderIdentity != "" && rec.HolderIdentity != k.identity {
		k.log.Info("standing by: another hub leads", "leader", rec.HolderIdentity)
	}
	return &rec, e.Value(), nil
}

// Create writes the first record, if there is none.
func (k *kvLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	body, err := json.Marshal(ler)
	if err != nil {
		return err
	}
	rev, err := k.kv.Create(ctx, leaseKey, body)
	if err != nil {
		return err
	}
	k.wrote(rev, ler)
	return nil
}

// Update replaces the record this hub read or wrote last, if no other
// hub wrote since.
func (k *kvLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	body, err := json.Marshal(ler)
	if err != nil {
		return err
	}
	k.mu.Lock()
	last := k.rev
	k.mu.Unlock()
	if last == 0 {
		return errors.New("the hub's lease was not read before its update")
	}
	rev, err := k.kv.Update(ctx, leaseKey, body, last)
	if err != nil {
		return err
	}
	k.wrote(rev, ler)
	return nil
}

func (k *kvLock) wrote(rev uint64, ler resourcelock.LeaderElectionRecord) {
	k.mu.Lock()
	k.rev = rev
	k.mu.Unlock()
	if ler.HolderIdentity == k.identity {
		k.held.Store(true)
	}
}

// RecordEvent logs what the elector would record as an event.
func (k *kvLock) RecordEvent(s string) { k.log.Info("hub lease", "event", s) }

// Identity is this hub's.
func (k *kvLock) Identity() string { return k.identity }

// Describe names the lock.
func (k *kvLock) Describe() string { return LeaderBucket + "/" + leaseKey }
