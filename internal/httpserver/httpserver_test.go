package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/health"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestEndpointsAndShutdown(t *testing.T) {
	tr := health.New(0)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "kubechat_test_total", Help: "x"})
	reg.MustRegister(c)
	s, err := New("127.0.0.1:0", tr, reg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	tr.Register("source/pods")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx, 5*time.Second) }()
	base := "http://" + s.Addr()
	// Until Start has begun serving, "http" itself is not ready either.
	require.Eventually(t, func() bool {
		code, body := get(t, base+"/readyz")
		return code == 503 && body == "not ready: source/pods\n"
	},
		5*time.Second, 10*time.Millisecond)
	tr.SetReady("source/pods", true)
	code, _ := get(t, base+"/readyz")
	require.Equal(t, 200, code)

	tr.SetHealthy("source/pods", false, "watch failed")
	require.Eventually(t, func() bool { code, _ := get(t, base+"/readyz"); return code == 503 }, 5*time.Second, 5*time.Millisecond)
	_, body := get(t, base+"/readyz")
	require.Contains(t, body, "source/pods (unhealthy for")
	code, _ = get(t, base+"/healthz")
	require.Equal(t, 200, code, "an outage is readiness, not liveness")
	tr.Loop("worker", time.Millisecond)
	require.Eventually(t, func() bool { code, _ := get(t, base+"/healthz"); return code == 503 }, 5*time.Second, 5*time.Millisecond)
	_, body = get(t, base+"/healthz")
	require.Contains(t, body, "worker: stuck for")

	code, body = get(t, base+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "kubechat_test_total 0")

	cancel()
	require.NoError(t, <-done)
	_, err = http.Get(base + "/healthz") //nolint:noctx
	require.Error(t, err, "closed after shutdown")
}

func TestPortInUse(t *testing.T) {
	tr := health.New(time.Minute)
	s, err := New("127.0.0.1:0", tr, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, err = New(s.Addr(), tr, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "http server: listen tcp "+s.Addr())
}
