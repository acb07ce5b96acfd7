package executor

import (
	"fmt"
	"sync"
	"time"
)

// Follows remembers when each follow started: a command that reports a
// rollout until it ends (flux follow, argocd app follow), whose outcome
// says how long the rollout took. An entry goes when its follow ends. The
// zero value is ready to use.
type Follows struct {
	mu      sync.Mutex
	started map[string]time.Time
}

// Start records that the follow key started now, unless it already had.
func (f *Follows) Start(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started == nil {
		f.started = map[string]time.Time{}
	}
	if _, ok := f.started[key]; !ok {
		f.started[key] = time.Now()
	}
}

// End forgets key and returns how long ago its follow started (0: unknown,
// as after a restart).
func (f *Follows) End(key string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.started[key]
	delete(f.started, key)
	if !ok {
		return 0
	}
	return time.Since(t)
}

// Took ends the follow key and says, as a line of its outcome, how long
// the rollout took: "<what> 42s after kubechat started following it.";
// "" when that is unknown.
func (f *Follows) Took(key, what string) string {
	d := f.End(key)
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("%s %s after kubechat started following it.\n", what, d.Round(time.Second))
}
