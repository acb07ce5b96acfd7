package httpserver

import (
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// ForwardedHeader marks a request one replica handed to the other; a
// replica that is not leading answers such a request 503 instead of
// handing it on again.
const ForwardedHeader = "X-Kubechat-Forwarded"

// Leader says where the leading replica is: leading is true on the
// leader itself, else url is the leader's advertised URL (empty when none
// is known yet).
type Leader func() (leading bool, url string)

// ToLeader serves h on the leading replica and hands every request that
// reaches another replica to the leader unchanged, so that clicks,
// messages and webhooks work whichever replica a Service picks. Streams
// (the web chat's) are passed on as they flow.
func ToLeader(h http.Handler, leader Leader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leading, to := leader()
		if leading {
			h.ServeHTTP(w, r)
			return
		}
		target, err := url.Parse(to)
		switch {
		case r.Header.Get(ForwardedHeader) != "":
			http.Error(w, "this replica is not leading; retry", http.StatusServiceUnavailable)
			return
		case to == "" || err != nil || target.Host == "":
			http.Error(w, "no leader yet; retry", http.StatusServiceUnavailable)
			return
		}
		// A stream handed on lasts as long as the leader keeps it open.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		p := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
				pr.Out.Header.Set(ForwardedHeader, "1")
			},
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				status := http.StatusBadGateway
				if errors.Is(err, http.ErrAbortHandler) {
					return
				}
				http.Error(w, "the leading replica did not answer; retry", status)
			},
		}
		p.ServeHTTP(w, r)
	})
}
