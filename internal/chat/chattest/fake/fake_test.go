package fake

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

func TestFaultsZeroValue(t *testing.T) {
	var f Faults
	require.False(t, f.Down())
	require.Zero(t, f.Calls())
	_, failed := f.Next()
	require.False(t, failed)
	require.Equal(t, 1, f.Calls())
}

func TestFaultsFailNext(t *testing.T) {
	var f Faults
	f.FailNext(2, http.StatusTooManyRequests, 1500*time.Millisecond)
	for range 2 {
		got, failed := f.Next()
		require.True(t, failed)
		require.Equal(t, Fault{Status: http.StatusTooManyRequests, RetryAfter: 1500 * time.Millisecond}, got)
	}
	_, failed := f.Next()
	require.False(t, failed, "the budget is used up")
	require.Equal(t, 3, f.Calls())

	f.FailNext(5, http.StatusBadGateway, 0)
	f.FailNext(1, http.StatusInternalServerError, -time.Second)
	got, failed := f.Next()
	require.True(t, failed)
	require.Equal(t, Fault{Status: http.StatusInternalServerError}, got, "FailNext replaces the budget; a negative wait counts as 0")
	_, failed = f.Next()
	require.False(t, failed)

	f.FailNext(3, http.StatusBadGateway, 0)
	f.FailNext(0, http.StatusBadGateway, 0)
	_, failed = f.Next()
	require.False(t, failed, "n = 0 cancels the failures pending")
	f.FailNext(-1, http.StatusBadGateway, 0)
	_, failed = f.Next()
	require.False(t, failed, "n < 0 cancels the failures pending")
}

func TestFaultsOutageKeepsBudget(t *testing.T) {
	var f Faults
	f.FailNext(1, http.StatusBadGateway, 0)
	f.SetDown(true)
	require.True(t, f.Down())
	for range 3 {
		got, failed := f.Next()
		require.True(t, failed)
		require.Equal(t, Fault{Status: http.StatusServiceUnavailable, Outage: true}, got)
	}
	f.SetDown(false)
	require.False(t, f.Down())
	got, failed := f.Next()
	require.True(t, failed)
	require.Equal(t, Fault{Status: http.StatusBadGateway}, got, "FailNext's failure waited for the outage to end")
	_, failed = f.Next()
	require.False(t, failed)
	require.Equal(t, 5, f.Calls())
}

func TestFaultsConcurrent(t *testing.T) {
	var f Faults
	f.FailNext(50, http.StatusBadGateway, 0)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	for range 10 {
		wg.Go(func() {
			for range 20 {
				if _, ok := f.Next(); ok {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 200, f.Calls())
	require.Equal(t, 50, failed, "every failure of the budget is used exactly once")
}

func TestFaultRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retryAfter time.Duration
		seconds    int
		header     string
	}{
		{0, 0, ""},
		{-time.Second, 0, ""},
		{time.Nanosecond, 1, "1"},
		{time.Second, 1, "1"},
		{time.Second + time.Millisecond, 2, "2"},
		{1500 * time.Millisecond, 2, "2"},
		{3 * time.Second, 3, "3"},
	} {
		f := Fault{Status: http.StatusTooManyRequests, RetryAfter: tc.retryAfter}
		require.Equal(t, tc.seconds, f.RetryAfterSeconds(), "RetryAfterSeconds of %v", tc.retryAfter)
		h := http.Header{}
		f.SetRetryAfter(h)
		require.Equal(t, tc.header, h.Get("Retry-After"), "Retry-After of %v", tc.retryAfter)
		_, set := h["Retry-After"]
		require.Equal(t, tc.header != "", set)
	}
}

func TestErrorStatus(t *testing.T) {
	for status, want := range map[int]int{
		0: 500, 200: 500, 302: 500, 399: 500, 400: 400, 429: 429, 503: 503, 599: 599, 600: 500,
	} {
		require.Equal(t, want, ErrorStatus(status), "ErrorStatus(%d)", status)
	}
}

// state is what a fake guards with its lock and a Signal tells about.
type state struct {
	mu      sync.Mutex
	changes Signal
	n       int
}

// add changes the state the way fakes do: under the lock, then Notify.
func (s *state) add() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.changes.Notify()
}

// waitOn runs Wait on another goroutine; evaluated tells what each
// evaluation of cond found, and done what Wait returned.
func waitOn(s *state, cond func() bool) (evaluated <-chan bool, done <-chan error) {
	evaluations, result := make(chan bool, 16), make(chan error, 1)
	go func() {
		result <- s.changes.Wait(context.Background(), &s.mu, func() bool {
			held := cond()
			evaluations <- held
			return held
		})
	}()
	return evaluations, result
}

// next returns the next value of ch, failing the test if none comes
// within five seconds or before the test ends.
func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var v T
	select {
	case v = <-ch:
	case <-ctx.Done():
		require.FailNow(t, "nothing received", "waiting for a %T: %v", v, ctx.Err())
	}
	return v
}

func TestSignalWaitsForCondition(t *testing.T) {
	s := &state{}
	s.changes.Notify() // with no waiter, does nothing
	evaluated, done := waitOn(s, func() bool { return s.n >= 3 })
	// Each change wakes Wait to evaluate its condition again; only the third
	// makes it hold. Wait returns then, and not before: no result is ready
	// while the condition does not hold, checked after each evaluation.
	require.False(t, next(t, evaluated))
	for range 2 {
		s.add()
		require.False(t, next(t, evaluated))
		require.Empty(t, done, "Wait returned before the condition held")
	}
	s.add()
	require.True(t, next(t, evaluated))
	require.NoError(t, next(t, done))
	require.Empty(t, evaluated, "Wait evaluates its condition once per change")
}

func TestSignalConditionRunsWithLockHeld(t *testing.T) {
	s := &state{n: 1}
	err := s.changes.Wait(context.Background(), &s.mu, func() bool {
		require.False(t, s.mu.TryLock(), "cond runs with the lock held")
		return true
	})
	require.NoError(t, err)
	require.True(t, s.mu.TryLock(), "Wait releases the lock")
	s.mu.Unlock()
}

func TestSignalContext(t *testing.T) {
	s := &state{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := s.changes.Wait(ctx, &s.mu, func() bool { return false })
	require.ErrorIs(t, err, context.DeadlineExceeded)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, s.changes.Wait(cancelled, &s.mu, func() bool { return true }), "a condition that holds wins over an ended ctx")
}

func TestSignalClose(t *testing.T) {
	s := &state{}
	evaluated, done := waitOn(s, func() bool { return false })
	require.False(t, next(t, evaluated), "Wait is waiting")
	s.mu.Lock()
	s.changes.Close()
	s.mu.Unlock()
	require.ErrorIs(t, next(t, done), ErrClosed, "Close wakes Wait")

	require.ErrorIs(t, s.changes.Wait(context.Background(), &s.mu, func() bool { return false }), ErrClosed)
	require.NoError(t, s.changes.Wait(context.Background(), &s.mu, func() bool { return true }), "a condition that holds wins over Close")
	s.changes.Close() // again: nothing
	s.changes.Notify()
}

func TestSignalManyWaiters(t *testing.T) {
	s := &state{}
	const waiters = 20
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := range waiters {
		wg.Go(func() {
			errs <- s.changes.Wait(context.Background(), &s.mu, func() bool { return s.n > i })
		})
	}
	for range waiters {
		s.add()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestMonotonic(t *testing.T) {
	var m Monotonic
	require.Equal(t, int64(100), m.Next(100))
	require.Equal(t, int64(101), m.Next(100), "a clock that did not move still gives a later value")
	require.Equal(t, int64(102), m.Next(50), "a clock that went back still gives a later value")
	require.Equal(t, int64(200), m.Next(200))

	var zero Monotonic
	require.Equal(t, int64(1), zero.Next(0))

	var (
		shared Monotonic
		wg     sync.WaitGroup
		mu     sync.Mutex
		seen   = map[int64]bool{}
	)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				v := shared.Next(7)
				mu.Lock()
				seen[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 800, "no value is handed out twice")
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusCreated, map[string]any{"ok": true})
	require.Equal(t, http.StatusCreated, rec.Code)
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, "{\"ok\":true}\n", rec.Body.String())
}

func TestTooLarge(t *testing.T) {
	rec := httptest.NewRecorder()
	body := http.MaxBytesReader(rec, nopCloser{strings.NewReader("0123456789")}, 4)
	_, err := io.ReadAll(body)
	require.Error(t, err)
	require.True(t, TooLarge(err))
	require.True(t, TooLarge(errors.Join(errors.New("read body"), err)), "a wrapped limit error counts")
	require.False(t, TooLarge(errors.New("unexpected EOF")))
	require.False(t, TooLarge(nil))
}

// nopCloser is a reader with a Close that does nothing.
type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func TestSplitPath(t *testing.T) {
	got, err := SplitPath("v3/conversations/19%3Aa%40thread.tacv2%3Bmessageid%3D1/activities")
	require.NoError(t, err)
	require.Equal(t, []string{"v3", "conversations", "19:a@thread.tacv2;messageid=1", "activities"}, got)

	got, err = SplitPath("a%2Fb/c:d@e;f=1")
	require.NoError(t, err)
	require.Equal(t, []string{"a/b", "c:d@e;f=1"}, got, "an escaped slash stays in its segment")

	got, err = SplitPath("")
	require.NoError(t, err)
	require.Equal(t, []string{""}, got)

	_, err = SplitPath("ok/bad%zz")
	require.ErrorContains(t, err, `unescape path segment "bad%zz"`)
}

// socketServer upgrades every request and hands the server side of the
// websocket, as a Socket, to the test.
func socketServer(t *testing.T) (url string, accepted <-chan *Socket) {
	t.Helper()
	sockets := make(chan *Socket, 4)
	upgrader := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sockets <- NewSocket(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), sockets
}

// dial opens a client websocket to url.
func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	client, resp, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestSocketGoAway(t *testing.T) {
	url, accepted := socketServer(t)
	client := dial(t, url)
	sock := <-accepted
	sock.GoAway()
	_, _, err := client.ReadMessage()
	var closeErr *websocket.CloseError
	require.ErrorAs(t, err, &closeErr)
	require.Equal(t, websocket.CloseGoingAway, closeErr.Code)
	require.Equal(t, "server closing", closeErr.Text)
}

func TestDrop(t *testing.T) {
	url, accepted := socketServer(t)
	clients := []*websocket.Conn{dial(t, url), dial(t, url)}
	socks := []*Socket{<-accepted, <-accepted}

	// Each socket's reader lets go of it once its read fails, as a fake's does.
	for _, sock := range socks {
		go func() {
			for {
				if _, _, err := sock.ReadMessage(); err != nil {
					sock.Release()
					return
				}
			}
		}()
	}
	dropped := make(chan struct{})
	go func() {
		Drop(socks)
		close(dropped)
	}()
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("Drop did not return")
	}
	for _, sock := range socks {
		select {
		case <-sock.Released():
		default:
			t.Fatal("Drop returned before the server let go of a socket")
		}
	}
	for _, client := range clients {
		_, _, err := client.ReadMessage()
		require.Error(t, err)
		var closeErr *websocket.CloseError
		if errors.As(err, &closeErr) {
			require.Equal(t, websocket.CloseAbnormalClosure, closeErr.Code, "Drop sends no close frame")
		}
	}
}

func TestReadParts(t *testing.T) {
	body := "--x\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\nC1\r\n" +
		"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.log\"\r\n\r\nline 1\n\r\n--x--\r\n"
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	require.Equal(t, "multipart/form-data", MediaType(req))
	var got []string
	require.NoError(t, ReadParts(req, func(part *multipart.Part, content []byte) {
		got = append(got, part.FormName()+"/"+part.FileName()+"="+string(content))
	}))
	require.Equal(t, []string{"channel_id/=C1", "files/a.log=line 1\n"}, got)

	for name, bad := range map[string]string{"garbage": "garbage", "cut short": body[:60]} {
		req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(bad))
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		require.Error(t, ReadParts(req, func(*multipart.Part, []byte) {}), name)
	}
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	require.Equal(t, "application/json", MediaType(req))
	require.Error(t, ReadParts(req, func(*multipart.Part, []byte) {}), "not multipart")
	req.Header.Del("Content-Type")
	require.Empty(t, MediaType(req))
}

func TestCaller(t *testing.T) {
	bot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "hang" {
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, r.Method+" "+r.Header.Get("Authorization")+" "+string(body))
	}))
	defer bot.Close()
	c := NewCaller(10 * time.Second)
	status, answer, err := c.Call(bot.URL, http.Header{"Authorization": {"Bearer t"}}, []byte("hi"), 1<<10)
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, status)
	require.Equal(t, "POST Bearer t hi", string(answer))

	_, answer, err = c.Call(bot.URL, nil, []byte("hi"), 4)
	require.NoError(t, err)
	require.Equal(t, "POST", string(answer), "the answer is read up to the limit")

	_, _, err = c.Call("http://127.0.0.1:1/", nil, nil, 1)
	require.ErrorContains(t, err, "post to http://127.0.0.1:1/")

	hung := make(chan error, 1)
	go func() {
		_, _, err := c.Call(bot.URL, nil, []byte("hang"), 1)
		hung <- err
	}()
	c.Close()
	require.ErrorIs(t, <-hung, context.Canceled, "Close cancels the calls under way")

	short := NewCaller(10 * time.Millisecond)
	defer short.Close()
	_, _, err = short.Call(bot.URL, nil, []byte("hang"), 1)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a call takes at most the timeout")
}

func TestWrap(t *testing.T) {
	require.NoError(t, Wrap(nil, "mention in %s", "C1"))
	err := Wrap(ErrClosed, "mention in %s", "C1")
	require.EqualError(t, err, "mention in C1: server closed")
	require.ErrorIs(t, err, ErrClosed)
}
