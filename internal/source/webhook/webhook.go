// Package webhook is the core shared by the sources that receive HTTP
// webhooks (Alertmanager, GitHub): they take requests on every replica but
// emit events only while started (on the leader), accept only POST, and
// cap the body they read.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/kubechat/kubechat/internal/event"
)

// Emit is how a running source hands on an event.
type Emit = func(context.Context, event.Event)

// Receiver remembers where to emit while its source runs. Embedded in a
// source, its Start is the source's.
type Receiver struct {
	mu   sync.Mutex
	emit Emit // nil while not running
	ctx  context.Context
}

// Start makes the receiver emit through emit until ctx is done.
func (r *Receiver) Start(ctx context.Context, emit Emit) error {
	r.mu.Lock()
	r.emit, r.ctx = emit, ctx
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.emit, r.ctx = nil, nil
	r.mu.Unlock()
	return nil
}

// Running returns the emit function and the context of the running
// source, or nil ones while it is not running (a standby replica, or
// shutting down).
func (r *Receiver) Running() (Emit, context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.emit, r.ctx
}

// Post answers 405 to anything but a POST and reports whether req is one.
func Post(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodPost {
		return true
	}
	w.Header().Set("Allow", http.MethodPost)
	http.Error(w, "only POST is accepted", http.StatusMethodNotAllowed)
	return false
}

// Body reads req's body up to limit bytes; a larger one gets 413, an
// unreadable one 400, and ok false.
func Body(w http.ResponseWriter, req *http.Request, limit int64) (body []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("the body is larger than %d bytes", limit), http.StatusRequestEntityTooLarge)
			return nil, false
		}
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}
