package flux

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubechat/kubechat/internal/executor"
	"github.com/kubechat/kubechat/internal/prdiff"
)

// followPoll is how often a followed Kustomization is read again.
const followPoll = 2 * time.Second

// follows remembers when each follow started, for the reconcile time
// its result reports; an entry goes when its follow ends.
type follows struct {
	mu      sync.Mutex
	started map[string]time.Time
}

func (f *follows) start(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started == nil {
		f.started = map[string]time.Time{}
	}
	if _, ok := f.started[key]; !ok {
		f.started[key] = time.Now()
	}
}

// end forgets key and returns how long ago its follow started (0: unknown,
// as after a restart).
func (f *follows) end(key string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.started[key]
	delete(f.started, key)
	if !ok {
		return 0
	}
	return time.Since(t)
}

// follow starts "flux follow kustomization NAME --sha SHA": it reports the
// Kustomization's state now, and Watch follows it until it is Ready at
// the commit, or failed there.
func (r *run) follow(ctx context.Context) (executor.Result, error) {
	r.e.follows.start(r.followKey())
	res, done, err := r.followState(ctx)
	if err != nil || done {
		return res, err
	}
	res.Ongoing = true
	return res, nil
}

func (r *run) followKey() string {
	return r.cmd.namespace + "/" + r.cmd.name + "@" + r.cmd.sha
}

// followState reads the Kustomization and says where it stands with
// --sha, and whether that is the end.
func (r *run) followState(ctx context.Context) (executor.Result, bool, error) {
	kc, err := client.New(r.cfg, client.Options{Scheme: scheme})
	if err != nil {
		return executor.Result{}, true, fmt.Errorf("connect to the cluster: %w", err)
	}
	ks := &kustomizev1.Kustomization{}
	key := types.NamespacedName{Namespace: r.cmd.namespace, Name: r.cmd.name}
	if err := kc.Get(ctx, key, ks); err != nil {
		if apierrors.IsForbidden(err) {
			return executor.Result{Errors: err.Error(), ExitCode: 1, Forbidden: true}, true, nil
		}
		return executor.Result{}, true, fmt.Errorf("get Kustomization %s: %w", key, err)
	}
	sha := prdiff.ShortSHA(r.cmd.sha)
	ready := apimeta.FindStatusCondition(ks.Status.Conditions, meta.ReadyCondition)
	atSHA := func(rev string) bool { return strings.HasSuffix(rev, ":"+r.cmd.sha) || rev == r.cmd.sha }
	switch {
	case ready != nil && ready.Status == "True" && atSHA(ks.Status.LastAppliedRevision):
		out := fmt.Sprintf("Kustomization %s is Ready at %s (%s).\n", key, sha, ks.Status.LastAppliedRevision)
		if d := r.e.follows.end(r.followKey()); d > 0 {
			out += fmt.Sprintf("Reconciled %s after kubechat started following it.\n", d.Round(time.Second))
		}
		return executor.Result{Output: out}, true, nil
	case ready != nil && ready.Status == "False" && atSHA(ks.Status.LastAttemptedRevision):
		r.e.follows.end(r.followKey())
		return executor.Result{Errors: fmt.Sprintf("Kustomization %s failed at %s: %s: %s\n", key, sha, ready.Reason, ready.Message), ExitCode: 1}, true, nil
	}
	state := "no Ready condition yet"
	if ready != nil {
		state = fmt.Sprintf("Ready=%s (%s)", ready.Status, ready.Reason)
	}
	applied := ks.Status.LastAppliedRevision
	if applied == "" {
		applied = "nothing yet"
	}
	return executor.Result{Output: fmt.Sprintf("Waiting for Kustomization %s to apply %s: applied %s, %s.\n", key, sha, applied, state)}, false, nil
}

// Watch follows what a follow command started: it returns when the
// Kustomization's state with the commit changed since last, or ended.
func (e *Executor) Watch(ctx context.Context, req executor.Request, last executor.Result) (executor.Result, bool, error) {
	r, err := e.prepare(req)
	if err != nil {
		return executor.Result{}, true, err
	}
	if r.cmd.verb != verbFollow {
		return executor.Result{}, true, fmt.Errorf("flux %s starts nothing to follow", r.cmd.verb)
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		res, done, err := r.followState(ctx)
		res.Output = r.secrets.Redact(res.Output)
		res.Errors = r.secrets.Redact(res.Errors)
		if err != nil || done || res.Output != last.Output {
			if !done {
				res.Ongoing = true
			}
			return res, done, err
		}
		select {
		case <-ctx.Done():
			return last, true, ctx.Err()
		case <-t.C:
		}
	}
}
