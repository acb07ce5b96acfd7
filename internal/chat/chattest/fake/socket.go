package fake

import (
	"time"

	"github.com/gorilla/websocket"
)

// Socket is a websocket a fake server holds open, with a channel that
// tells when the server has let go of it. Embed it in the fake's own
// connection type; the websocket's methods are promoted.
type Socket struct {
	*websocket.Conn
	released chan struct{}
}

// NewSocket wraps an upgraded websocket.
func NewSocket(ws *websocket.Conn) *Socket {
	return &Socket{Conn: ws, released: make(chan struct{})}
}

// Abort closes the network connection at once, without a close frame, as
// when a network path dies. The fake's reader then fails and cleans up.
func (s *Socket) Abort() {
	_ = s.Conn.Close() // closes the net.Conn; sends nothing
}

// GoAway says goodbye with a "going away" close frame, waiting at most a
// second to write it, and closes the connection.
func (s *Socket) GoAway() {
	goingAway := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server closing")
	_ = s.WriteControl(websocket.CloseMessage, goingAway, time.Now().Add(time.Second))
	_ = s.Conn.Close()
}

// Release tells Drop that the server has let go of the socket: its
// goroutines are done with it and it is no longer listed as open. Call it
// exactly once.
func (s *Socket) Release() {
	close(s.released)
}

// Released returns a channel that Release closes.
func (s *Socket) Released() <-chan struct{} {
	return s.released
}

// Droppable is a connection Drop can cut: a *Socket, or a type embedding one.
type Droppable interface {
	Abort()
	Released() <-chan struct{}
}

// Drop cuts every connection abruptly, as Abort does, and returns once the
// server has let go of each of them.
func Drop[C Droppable](conns []C) {
	for _, c := range conns {
		c.Abort()
	}
	for _, c := range conns {
		<-c.Released()
	}
}
