package fake

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// testConn is a fake's own connection type.
type testConn struct {
	*Conn
	name string
}

// hubServer serves a hub whose connections echo what they read, each
// becoming ready when it says "ready" and ending when it says "bye".
func hubServer(t *testing.T, queue int) (*Hub[*testConn], string) {
	t.Helper()
	var signal Signal
	hub := NewHub[*testConn](&signal, queue)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := hub.Accept(w, r, func(conn *Conn) *testConn { return &testConn{Conn: conn, name: r.URL.Query().Get("name")} })
		if !ok {
			return
		}
		hub.Serve(c, 10*time.Millisecond, func(_ int, data []byte) bool {
			switch string(data) {
			case "ready":
				hub.SetReady(c, true)
			case "bye":
				return false
			}
			return c.Send(data)
		})
	}))
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
	})
	return hub, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// say writes a text message.
func say(t *testing.T, ws *websocket.Conn, text string) {
	t.Helper()
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(text)))
}

// hear reads the next text message.
func hear(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	return string(data)
}

func TestHubServes(t *testing.T) {
	hub, url := hubServer(t, 16)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws := dial(t, url+"?name=a")
	var pings atomic.Int32
	ws.SetPingHandler(func(string) error { pings.Add(1); return nil })

	say(t, ws, "one")
	require.Equal(t, "one", hear(t, ws))
	require.Equal(t, 0, hub.Connected(), "open but not ready")
	say(t, ws, "ready")
	require.Equal(t, "ready", hear(t, ws))
	require.NoError(t, hub.WaitConnected(ctx, 1))
	require.Equal(t, 1, hub.Connections())
	conns := hub.Conns()
	require.Len(t, conns, 1)
	require.Equal(t, "a", conns[0].name)
	require.True(t, hub.Ready(conns[0]))
	// The ping handler runs while the client reads: read echoes until a ping came.
	for pings.Load() == 0 {
		require.NoError(t, ctx.Err(), "no ping")
		say(t, ws, "tick")
		require.Equal(t, "tick", hear(t, ws))
	}

	// Frames the server queues arrive in order, after what came before.
	for _, text := range []string{"x", "y", "z"} {
		require.True(t, conns[0].SendJSON(text))
	}
	for _, want := range []string{`"x"`, `"y"`, `"z"`} {
		require.Equal(t, want, hear(t, ws))
	}

	hub.SetReady(conns[0], false)
	require.Equal(t, 0, hub.Connected())
	hub.SetReady(conns[0], true)
	require.Equal(t, 2, hub.Connections(), "each time a connection becomes ready counts")

	say(t, ws, "bye")
	_, _, err := ws.ReadMessage()
	require.Error(t, err, "the server ends the connection")
	select {
	case <-conns[0].Released():
	case <-ctx.Done():
		t.Fatal("the hub did not let go of the connection")
	}
	require.False(t, conns[0].Send([]byte("late")), "nothing is queued once the connection ended")
	require.Empty(t, hub.Conns())
}

func TestHubDropAndClose(t *testing.T) {
	hub, url := hubServer(t, 16)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	first := dial(t, url)
	say(t, first, "ready")
	require.Equal(t, "ready", hear(t, first))

	hub.Drop()
	require.Equal(t, 0, hub.Connected())
	_, _, err := first.ReadMessage()
	var closeErr *websocket.CloseError
	require.Error(t, err)
	if errors.As(err, &closeErr) {
		require.Equal(t, websocket.CloseAbnormalClosure, closeErr.Code, "Drop sends no close frame")
	}

	second := dial(t, url)
	say(t, second, "ready")
	require.Equal(t, "ready", hear(t, second))
	require.NoError(t, hub.WaitConnected(ctx, 2))

	hub.Close()
	require.True(t, hub.Closed())
	_, _, err = second.ReadMessage()
	require.ErrorAs(t, err, &closeErr)
	require.Equal(t, websocket.CloseGoingAway, closeErr.Code)
	hub.Close() // again: nothing

	late, resp, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err, "a closed hub still upgrades, to say goodbye")
	require.NoError(t, resp.Body.Close())
	defer late.Close()
	_, _, err = late.ReadMessage()
	require.ErrorAs(t, err, &closeErr)
	require.Equal(t, websocket.CloseGoingAway, closeErr.Code)
	require.Equal(t, 0, hub.Connected())
}

func TestHubCutsSlowClients(t *testing.T) {
	hub, url := hubServer(t, 1)
	ws := dial(t, url)
	say(t, ws, "ready")
	require.Equal(t, "ready", hear(t, ws))
	c := hub.Conns()[0]
	// The client reads nothing: the writer blocks at the latest once the
	// socket buffers fill, the queue of one fills, and the next frame cuts it.
	big := []byte(strings.Repeat("x", 1<<20))
	sent := 0
	for c.Send(big) {
		sent++
		require.Less(t, sent, 1000, "a client that reads nothing was never cut off")
	}
	select {
	case <-c.Released():
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not let go of the slow client")
	}
}
