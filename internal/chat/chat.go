package chat

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/health"
)

// Notifier delivers one message. Errors are retryable unless wrapped with Permanent.
type Notifier interface {
	Post(ctx context.Context, to Channel, m Message) (MessageRef, error)
}

// Listener blocks until ctx is done, passing each inbound mention or button click to h.
type Listener interface {
	Listen(ctx context.Context, h Handler) error
}

// ConnectionListener is implemented by platforms whose Listen opens a
// connection to the platform: Slack Socket Mode, the Discord gateway, the
// Mattermost websocket. With leader election only the leader listens on
// them. Slack hands each event to one of an app's connections, and Discord
// and Mattermost hand it to all of them, so a listening standby would take
// clicks on buttons it never issued, or answer every command a second time.
type ConnectionListener interface {
	Listener
	ListensOverConnection()
}

// Platform is what the registry builds; Name is the instance name from config ("ops-slack").
type Platform interface {
	Name() string
	Notifier
	Listener
}

// Handler turns one inbound message into the reply.
type Handler interface {
	Handle(ctx context.Context, in Inbound) Message
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, in Inbound) Message

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, in Inbound) Message { return f(ctx, in) }

// HTTPReceiver is implemented by platforms that receive webhooks; the app
// mounts the handler at /hooks/<platform name>, or at HTTPPrefix when the
// platform also implements it (Teams: /teams/<name>).
type HTTPReceiver interface{ HTTPHandler() http.Handler }

// HTTPPrefix is the path under which the app mounts p's HTTPHandler:
// p's own HTTPPrefix when it has one (Teams: /teams/<name>), else
// /hooks/<name>. Setup guides and their tests read paths from here too.
func HTTPPrefix(p Platform) string {
	if pp, ok := p.(interface{ HTTPPrefix() string }); ok {
		return pp.HTTPPrefix()
	}
	return "/hooks/" + p.Name()
}

// StateStore is the agent's small persisted key-value state (a ConfigMap
// in the cluster). Platforms keep what must survive a restart there, such
// as Teams conversation references.
type StateStore interface {
	Get(key string) (string, bool)
	// Set writes key (deletes it when value is empty).
	Set(ctx context.Context, key, value string) error
}

// Deps are what the app hands every platform factory.
type Deps struct {
	Log        *slog.Logger
	HTTPClient *http.Client
	Metrics    prometheus.Registerer
	Health     *health.Tracker
	Cluster    string
	// State is nil when the agent runs without a cluster.
	State StateStore
}

// Factory builds a platform from its own settings block. It validates and never dials out.
type Factory func(name string, settings config.Raw, d Deps) (Platform, error)

// Channel is one destination on a platform.
type Channel struct {
	// Name is the config name of the channel.
	Name string
	// ID is the platform's id or name for it.
	ID string
}

// MessageRef points at a delivered message, so that it can be edited or replied to.
type MessageRef struct {
	Platform string
	Channel  string
	ID       string
	// Thread is the root message of the thread the message lives in, if any.
	Thread string
}

// Root is the id of the thread the message belongs to: its thread's root,
// or the message itself when it starts one. A reply to r goes there.
func (r MessageRef) Root() string {
	if r.Thread != "" {
		return r.Thread
	}
	return r.ID
}

// Inbound is one mention, direct message or button click from a user.
type Inbound struct {
	Platform string
	Channel  Channel
	UserID   string
	UserName string
	// Text is the message text with the bot mention removed.
	Text string
	// ButtonID is set for a button click or a select: the opaque, signed
	// id of the button (or select) it came from.
	ButtonID string
	// Value is the chosen option of a select.
	Value string
	// Thread is where the reply goes.
	Thread MessageRef
	// Overheard is set when the message addresses another agent's bot (the
	// kubechat of another cluster in a shared channel): this agent answers
	// only when --cluster or the channel's default cluster names its cluster.
	Overheard bool
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (4xx, unknown channel, revoked token).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether any error in err's chain was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
