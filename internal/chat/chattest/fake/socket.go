package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
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

// writeTimeout bounds every write of a Conn's writer.
const writeTimeout = 5 * time.Second

// Conn is a websocket a Hub keeps open, written to by a goroutine of its
// own from a queue, so that the fake can send to it while it holds its
// locks. Embed it in the fake's own connection type.
type Conn struct {
	*Socket
	out   chan []byte
	quit  chan struct{} // closed when the reader has stopped, to stop the writer
	ready bool          // guarded by the Hub's lock: counted as connected
}

// Send queues a text frame. A client that does not keep up, whose queue is
// full, is cut off, as the platforms cut off slow consumers. Send reports
// whether the frame was queued: not then, nor once the connection has ended.
func (c *Conn) Send(frame []byte) bool {
	select {
	case <-c.quit:
		return false
	default:
	}
	select {
	case c.out <- frame:
		return true
	default:
		c.Abort()
		return false
	}
}

// SendJSON queues v, encoded as JSON, as Send does.
func (c *Conn) SendJSON(v any) bool {
	data, err := json.Marshal(v)
	return err == nil && c.Send(data)
}

// link returns the Conn, for Hub.
func (c *Conn) link() *Conn { return c }

// write sends the queued frames, and a ping every ping (none when 0),
// until the reader stops or a write fails, which cuts the connection.
func (c *Conn) write(ping time.Duration) {
	var tick <-chan time.Time
	if ping > 0 {
		ticker := time.NewTicker(ping)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		var err error
		select {
		case <-c.quit:
			return
		case frame := <-c.out:
			if err = c.SetWriteDeadline(time.Now().Add(writeTimeout)); err == nil {
				err = c.WriteMessage(websocket.TextMessage, frame)
			}
		case <-tick:
			err = c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
		}
		if err != nil {
			c.Abort()
			return
		}
	}
}

// Link is a connection a Hub keeps: a *Conn, or a pointer to a type that
// embeds one.
type Link interface {
	comparable
	link() *Conn
}

// Hub keeps the websockets of a fake server: it accepts them, runs their
// reader and writer, counts those that are connected (authenticated or
// greeted, as the platform's protocol goes), cuts them (Drop), and says
// goodbye to them when the server closes. A Hub is safe for concurrent use.
type Hub[C Link] struct {
	signal   *Signal // notified of every change
	queue    int     // frames each connection may have waiting
	upgrader websocket.Upgrader

	mu       sync.Mutex
	conns    []C // open, oldest first
	accepted int // connections ever made ready
	closed   bool
	wg       sync.WaitGroup // one per connection until Serve returns
}

// NewHub returns a hub that notifies signal of every change and lets each
// connection have up to queue frames waiting to be written. It accepts
// websockets from any origin, as the platforms' clients send theirs.
func NewHub[C Link](signal *Signal, queue int) *Hub[C] {
	return &Hub[C]{
		signal:   signal,
		queue:    queue,
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
	}
}

// Accept upgrades the request to a websocket, wraps it and keeps it open,
// not yet connected (see SetReady). It reports false when the upgrade fails
// (the upgrader has answered) or the hub is closed (then it says goodbye;
// a fake that answers a closed server in its own words checks Closed
// first). When Accept reports true, the caller must Serve the connection.
func (h *Hub[C]) Accept(w http.ResponseWriter, r *http.Request, wrap func(*Conn) C) (C, bool) {
	var zero C
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return zero, false
	}
	c := wrap(&Conn{Socket: NewSocket(ws), out: make(chan []byte, h.queue), quit: make(chan struct{})})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		c.link().GoAway()
		return zero, false
	}
	h.conns = append(h.conns, c)
	h.wg.Add(1)
	return c, true
}

// Serve runs a connection Accept returned until it ends: its writer sends
// the queued frames and, every ping (never when 0), a ping, while its
// reader passes each message the client sends to read, until reading fails
// or read returns false. Then the hub forgets the connection and releases it.
func (h *Hub[C]) Serve(c C, ping time.Duration, read func(typ int, data []byte) bool) {
	defer h.wg.Done()
	conn := c.link()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		conn.write(ping)
	}()
	for {
		typ, data, err := conn.ReadMessage()
		if err != nil || !read(typ, data) {
			break
		}
	}
	close(conn.quit)
	<-writerDone
	_ = conn.Conn.Close()
	h.mu.Lock()
	h.conns = slices.DeleteFunc(h.conns, func(open C) bool { return open == c })
	h.mu.Unlock()
	h.signal.Notify()
	conn.Release()
}

// SetReady counts the connection as connected from now on, or no longer;
// each time it starts to count is one more of Connections.
func (h *Hub[C]) SetReady(c C, ready bool) {
	h.mu.Lock()
	conn := c.link()
	if ready && !conn.ready {
		h.accepted++
	}
	conn.ready = ready
	h.mu.Unlock()
	h.signal.Notify()
}

// Ready reports whether the connection counts as connected.
func (h *Hub[C]) Ready(c C) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.link().ready
}

// Conns returns the open connections that count as connected, oldest first.
func (h *Hub[C]) Conns() []C {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.readyLocked()
}

// readyLocked returns the open connections that count as connected. h.mu must be held.
func (h *Hub[C]) readyLocked() []C {
	var out []C
	for _, c := range h.conns {
		if c.link().ready {
			out = append(out, c)
		}
	}
	return out
}

// Connections returns how many connections have counted as connected so far.
func (h *Hub[C]) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.accepted
}

// Connected returns how many open connections count as connected now.
func (h *Hub[C]) Connected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.readyLocked())
}

// WaitConnected waits until at least total connections have counted as
// connected so far and at least one of them is open; after a Drop, wait for
// Connections()+1.
func (h *Hub[C]) WaitConnected(ctx context.Context, total int) error {
	err := h.signal.Wait(ctx, &h.mu, func() bool { return h.accepted >= total && len(h.readyLocked()) > 0 })
	if err != nil {
		return fmt.Errorf("wait for %d connections: %w", total, err)
	}
	return nil
}

// Drop cuts every open connection abruptly, closing the network connection
// without a close frame, as when a network path dies, and returns once the
// hub has let go of them.
func (h *Hub[C]) Drop() {
	h.mu.Lock()
	conns := make([]*Conn, len(h.conns))
	for i, c := range h.conns {
		conns[i] = c.link()
	}
	h.mu.Unlock()
	Drop(conns)
}

// Closed reports whether Close was called.
func (h *Hub[C]) Closed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Close says goodbye to every open connection with a "going away" close
// frame and waits until the hub has let go of them; from then on Accept
// refuses connections. Closing again does nothing.
func (h *Hub[C]) Close() {
	h.mu.Lock()
	h.closed = true
	conns := slices.Clone(h.conns)
	h.mu.Unlock()
	for _, c := range conns {
		c.link().GoAway()
	}
	h.wg.Wait()
}
