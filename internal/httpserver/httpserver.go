// Package httpserver is the agent's HTTP server: /healthz, /readyz, /metrics
// and the mount points of inbound webhooks. The inbound routes can be
// replaced while the server runs (SetInbound), so that a config reload
// routes webhooks, clicks and the web chat to the parts of the new config
// without closing the listener or the requests in flight.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubechat/kubechat/internal/health"
)

// Server serves the agent's endpoints. New binds the port, so that a busy
// port fails at startup and tests can listen on ":0" and read Addr.
type Server struct {
	ln     net.Listener
	mux    *http.ServeMux
	srv    *http.Server
	health *health.Tracker
	log    *slog.Logger
	// inbound serves every path the standard endpoints do not take.
	inbound atomic.Pointer[http.Handler]
}

// New listens on addr and prepares the standard endpoints.
func New(addr string, tr *health.Tracker, gather prometheus.Gatherer, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http server: %w", err)
	}
	s := &Server{ln: ln, mux: http.NewServeMux(), health: tr, log: log}
	s.mux.HandleFunc("GET /healthz", s.check(tr.Healthy))
	s.mux.HandleFunc("GET /readyz", s.check(tr.Ready))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	s.mux.HandleFunc("/", s.serveInbound)
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	tr.Register("http")
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handle mounts h at pattern (for example "/hooks/teams/") for the
// server's lifetime.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// SetInbound makes h serve every request no other route takes, from the
// next request on; requests already being served (an open event stream)
// keep the handler they started with.
func (s *Server) SetInbound(h http.Handler) { s.inbound.Store(&h) }

func (s *Server) serveInbound(w http.ResponseWriter, r *http.Request) {
	if h := s.inbound.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.NotFound(w, r)
}

func (s *Server) check(f func() error) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := f(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// Start serves until ctx is done, then shuts down within the context's grace.
func (s *Server) Start(ctx context.Context, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.health.SetReady("http", true)
	s.log.Info("http server listening", "addr", s.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	// The run context is gone; shutting down needs a fresh, bounded one.
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	return nil
}
