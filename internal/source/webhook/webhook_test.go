package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/event"
)

func TestReceiverRunsUntilItsContextEnds(t *testing.T) {
	var r Receiver
	emit, _ := r.Running()
	require.Nil(t, emit, "not started")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- r.Start(ctx, func(context.Context, event.Event) { close(started) })
	}()
	for emit == nil {
		emit, _ = r.Running()
	}
	emit(ctx, event.Event{})
	<-started
	cancel()
	require.NoError(t, <-done)
	emit, got := r.Running()
	require.Nil(t, emit, "stopped")
	require.Nil(t, got)
}

func TestPostAndBody(t *testing.T) {
	w := httptest.NewRecorder()
	require.False(t, Post(w, httptest.NewRequest(http.MethodGet, "/", nil)))
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, http.MethodPost, w.Header().Get("Allow"))

	w = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("12345"))
	require.True(t, Post(w, req))
	body, ok := Body(w, req, 5)
	require.True(t, ok)
	require.Equal(t, "12345", string(body))

	w = httptest.NewRecorder()
	_, ok = Body(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("123456")), 5)
	require.False(t, ok)
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Contains(t, w.Body.String(), "larger than 5 bytes")
}
