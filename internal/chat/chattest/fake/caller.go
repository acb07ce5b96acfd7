package fake

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"
)

// Caller calls the bot over HTTP, as a platform does (Teams posts
// activities to it, Mattermost calls its integrations), each call bounded
// by a timeout; Close cancels the calls under way. A Caller is safe for
// concurrent use.
type Caller struct {
	client  *http.Client
	timeout time.Duration
	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
}

// NewCaller returns a Caller whose calls each take at most timeout. It
// connects directly, without a proxy: the bot is on loopback.
func NewCaller(timeout time.Duration) *Caller {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	ctx, cancel := context.WithCancel(context.Background())
	return &Caller{client: &http.Client{Transport: transport}, timeout: timeout, ctx: ctx, cancel: cancel}
}

// Call POSTs body to the bot at url with the header and returns the
// answer's status and at most limit bytes of its body.
func (c *Caller) Call(url string, header http.Header, body []byte, limit int64) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("post to %s: %w", url, err)
	}
	maps.Copy(req.Header, header)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("post to %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return resp.StatusCode, answer, fmt.Errorf("read answer of %s: %w", url, err)
	}
	return resp.StatusCode, answer, nil
}

// Close cancels the calls under way and closes idle connections.
func (c *Caller) Close() {
	c.cancel()
	c.client.CloseIdleConnections()
}
