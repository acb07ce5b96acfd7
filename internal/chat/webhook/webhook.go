// Package webhook is the generic webhook platform: every message is POSTed as
// JSON to a URL, optionally signed with an HMAC-SHA256 header, so that any
// HTTP service can receive kubechat's alerts. An edit (a transition alert
// resolving) is a POST with "action": "update" and the original message id.
//
// Idempotency: a message has one id from its first attempt to its last
// retry, and across restarts of the agent (it is derived from the message's
// key); each request also carries an Idempotency-Key header, the same on
// every retry of the same post or edit, so a receiver can drop repeats
// when a timeout hid that an earlier attempt arrived.
//
// Signature: X-Kubechat-Signature: sha256=<hex HMAC of "<timestamp>.<body>">,
// with the Unix timestamp in X-Kubechat-Timestamp, so receivers can refuse
// replays.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// Settings configure the webhook platform.
type Settings struct {
	// URL receives the POSTs (http or https).
	URL string `yaml:"url"`
	// SigningSecret, when set, signs each request.
	SigningSecret *config.Secret `yaml:"signingSecret"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers"`
}

// Payload is the JSON body of one request.
type Payload struct {
	ID       string          `json:"id"`
	Action   string          `json:"action"` // "post" or "update"
	Thread   string          `json:"thread,omitempty"`
	Channel  string          `json:"channel"`
	Platform string          `json:"platform"`
	Title    string          `json:"title"`
	Level    string          `json:"level,omitempty"`
	Text     string          `json:"text"`
	Sections []chat.Section  `json:"sections,omitempty"`
	Context  string          `json:"context,omitempty"`
	Time     time.Time       `json:"time"`
	Raw      json.RawMessage `json:"-"`
}

type platform struct {
	name   string
	s      Settings
	client *http.Client
}

// New builds a webhook platform. It does not connect.
func New(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	var s Settings
	if err := config.DecodeStrict(raw, &s); err != nil {
		return nil, fmt.Errorf("webhook %q: %w", name, err)
	}
	if err := config.CheckHTTPURL("settings.url", s.URL); err != nil {
		return nil, fmt.Errorf("webhook %q: %w", name, err)
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: chat.PostTimeout}
	}
	return &platform{name: name, s: s, client: client}, nil
}

func (p *platform) Name() string { return p.name }

// Listen has nothing to receive: a webhook only sends.
func (p *platform) Listen(ctx context.Context, _ chat.Handler) error {
	<-ctx.Done()
	return nil
}

// Post sends one message. 429 and 5xx are retryable (429 with its
// Retry-After), other 4xx are permanent.
func (p *platform) Post(ctx context.Context, to chat.Channel, m chat.Message) (chat.MessageRef, error) {
	pl := Payload{Action: "post", Channel: to.ID, Platform: p.name, Title: m.Title, Level: string(m.Level),
		Text: m.PlainText(), Sections: m.Sections, Context: m.Context, Time: time.Now().UTC()}
	idem := m.Key
	switch {
	case m.Replace != nil:
		pl.ID, pl.Action = m.Replace.ID, "update"
		if idem == "" {
			idem = newID()
		}
		idem = "update." + idem
	case m.Key != "":
		pl.ID = m.Key
	default:
		pl.ID = newID()
		idem = pl.ID
	}
	if m.Thread != nil {
		pl.Thread = m.Thread.ID
	}
	body, err := json.Marshal(pl)
	if err != nil {
		return chat.MessageRef{}, chat.Permanent(fmt.Errorf("webhook %q: encode: %w", p.name, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.s.URL, bytes.NewReader(body))
	if err != nil {
		return chat.MessageRef{}, chat.Permanent(fmt.Errorf("webhook %q: %w", p.name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kubechat")
	req.Header.Set("Idempotency-Key", idem)
	for k, v := range p.s.Headers {
		req.Header.Set(k, v)
	}
	if p.s.SigningSecret != nil {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Kubechat-Timestamp", ts)
		req.Header.Set("X-Kubechat-Signature", "sha256="+Sign(p.s.SigningSecret.Reveal(), ts, body))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// Never echo the URL: it may hold a token.
		return chat.MessageRef{}, fmt.Errorf("webhook %q: post: %w", p.name, redactURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		ref := chat.MessageRef{Platform: p.name, Channel: to.ID, ID: pl.ID}
		if m.Thread != nil {
			ref.Thread = m.Thread.ID
		}
		return ref, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return chat.MessageRef{}, chat.RetryAfter(time.Duration(max(after, 1))*time.Second, fmt.Errorf("webhook %q: 429 rate limited", p.name))
	case resp.StatusCode >= 500:
		return chat.MessageRef{}, fmt.Errorf("webhook %q: server error %d", p.name, resp.StatusCode)
	default:
		return chat.MessageRef{}, chat.Permanent(fmt.Errorf("webhook %q: refused with %d", p.name, resp.StatusCode))
	}
}

// Sign computes the hex HMAC-SHA256 of "<timestamp>.<body>".
func Sign(secret, timestamp string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestamp + "."))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks a request's signature headers against body; receivers may use it.
func Verify(secret string, header http.Header, body []byte) bool {
	sig := header.Get("X-Kubechat-Signature")
	want := "sha256=" + Sign(secret, header.Get("X-Kubechat-Timestamp"), body)
	return hmac.Equal([]byte(sig), []byte(want))
}

func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
