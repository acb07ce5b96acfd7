// Package alerts holds the executors that act on the alerting pipeline
// rather than on the cluster: silence (add, list and expire silences of
// the caller's channel) and explain (why an object's recent events did or
// did not notify). Being executors, they go through the channel's policy
// like any command: a channel whose silence executor allows only "list"
// cannot add a silence, and explain's -n is checked against the policy's
// namespaces.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/kubechat/kubechat/internal/alerting"
	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/executor"
)

// Settings configure the silence and explain executors: they take none.
type Settings struct{}

// Alerting is what the executors need of the alerting pipeline
// (*alerting.Pipeline).
type Alerting interface {
	AddSilence(ctx context.Context, s alerting.Silence) (alerting.Silence, error)
	ExpireSilence(ctx context.Context, platform, channel, id string) (alerting.Silence, error)
	Silences(platform, channel string) []alerting.Silence
	Explain(kind, namespace, name string) []alerting.Trace
}

// attachable is an executor of this package, which acts on the pipeline
// it is attached to.
type attachable interface{ attach(a Alerting) }

// base is what both executors share: their name and the pipeline.
type base struct {
	name string
	to   atomic.Pointer[Alerting]
}

func (b *base) Name() string { return b.name }

// ClusterFree: silences and explain act on the alerting pipeline only, so
// a channel without a Kubernetes identity may run them.
func (*base) ClusterFree() bool   { return true }
func (b *base) attach(a Alerting) { b.to.Store(&a) }
func (b *base) alerting() Alerting {
	if a := b.to.Load(); a != nil {
		return *a
	}
	return nil
}

// errDetached is returned by an executor no pipeline was attached to.
var errDetached = errors.New("this agent routes no alerts")

// Attach gives the executors of this package among execs the pipeline
// they act on. The agent calls it whenever it builds them.
func Attach(execs map[string]executor.Executor, a Alerting) {
	for _, e := range execs {
		if x, ok := e.(attachable); ok {
			x.attach(a)
		}
	}
}

func decode(typ, name string, raw config.Raw) error {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return fmt.Errorf("%s executor %q: %w", typ, name, err)
	}
	return nil
}
