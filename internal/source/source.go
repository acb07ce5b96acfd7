// Package source defines where events come from. A Source produces events
// until its context ends; Start blocks, as a controller-runtime Runnable does,
// and returns nil on cancellation or an error when it cannot go on.
package source

import (
	"context"

	"github.com/kubechat/kubechat/internal/event"
)

// Source produces events until ctx is done.
type Source interface {
	// Name is the configured source name.
	Name() string
	Start(ctx context.Context, emit func(context.Context, event.Event)) error
}
