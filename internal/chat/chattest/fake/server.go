package fake

import (
	"context"
	"net/http"
	"net/http/httptest"
	"time"
)

// Server is what a fake chat server is made of whatever its platform: the
// store, the websockets, the HTTP server on loopback, and the test-side
// controls built on them. A fake embeds it, so that it offers these
// controls as its own, and keeps only its platform's wire format. X is the
// platform's part of a message and C its websocket connection type (*Conn
// for a platform without websockets). Make one with NewServer and Start it.
type Server[X any, C Link] struct {
	// Store holds the platform's channels, messages, files and faults.
	Store *Store[X]
	// Hub holds the platform's websockets.
	Hub *Hub[C]
	// HTTP serves the platform on loopback once Start has run.
	HTTP *httptest.Server
	// Bot calls the bot, for platforms that do.
	Bot *Caller
}

// botTimeout bounds each call to the bot, as the platforms' own timeouts
// do (Mattermost's OutgoingIntegrationRequestsTimeout is 30s by default).
const botTimeout = 30 * time.Second

// NewServer returns a server that is not serving yet, whose websockets may
// each have up to queue frames waiting to be written.
func NewServer[X any, C Link](queue int) *Server[X, C] {
	store := NewStore[X]()
	return &Server[X, C]{Store: store, Hub: NewHub[C](&store.Signal, queue), Bot: NewCaller(botTimeout)}
}

// Start serves handler on a loopback port. A fake's constructor calls it
// once, when its routes are built.
func (s *Server[X, C]) Start(handler http.Handler) {
	s.HTTP = httptest.NewServer(handler)
}

// Close says goodbye to every websocket, waits for their goroutines, shuts
// the HTTP server down, cancels calls to the bot under way and fails the
// waits in progress. Closing again does nothing.
func (s *Server[X, C]) Close() {
	if !s.Store.Close() {
		return
	}
	s.Hub.Close()
	s.HTTP.Close()
	s.Bot.Close()
}

// URL returns the server's base URL, http://127.0.0.1:PORT, without a
// trailing slash.
func (s *Server[X, C]) URL() string {
	return s.HTTP.URL
}

// ChannelID returns the id of the named channel (a leading '#' is
// ignored), or "" if there is none.
func (s *Server[X, C]) ChannelID(name string) string {
	return s.Store.ChannelID(name)
}

// FailNext makes the next n API calls fail with the HTTP status, replacing
// any failures still pending; n <= 0 cancels them. A status outside 400-599
// counts as 500. A 429 tells the client to retry after retryAfter, in the
// platform's own words, as the package of each fake says; so do the
// bodies of the failures.
func (s *Server[X, C]) FailNext(n, status int, retryAfter time.Duration) {
	s.Store.FailNext(n, ErrorStatus(status), retryAfter)
}

// SetDown starts or ends an outage: while down, every API call fails with
// 503 Service Unavailable, and the failures of FailNext wait until it ends.
func (s *Server[X, C]) SetDown(down bool) {
	s.Store.SetDown(down)
}

// Calls returns how many API calls the server has received, failed and
// refused ones included.
func (s *Server[X, C]) Calls() int {
	return s.Store.Calls()
}

// Connections returns how many websockets have connected so far: they
// authenticated, or were greeted, as the platform's protocol goes.
func (s *Server[X, C]) Connections() int {
	return s.Hub.Connections()
}

// Connected returns how many connected websockets are open now.
func (s *Server[X, C]) Connected() int {
	return s.Hub.Connected()
}

// WaitConnected waits until at least total websockets have connected so
// far and at least one of them is open; after a Drop, wait for
// Connections()+1.
func (s *Server[X, C]) WaitConnected(ctx context.Context, total int) error {
	return s.Hub.WaitConnected(ctx, total)
}

// Drop cuts every open websocket abruptly, closing the network connection
// without a close frame, as when a network path dies, and returns once the
// server has let go of them.
func (s *Server[X, C]) Drop() {
	s.Hub.Drop()
}
