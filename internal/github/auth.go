package github

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gh "github.com/google/go-github/v60/github"

	"github.com/kubechat/kubechat/internal/config"
)

// TokenSource gives the token that authenticates a request: to the API
// (Transport) and, as the password, to Git over HTTPS.
type TokenSource func(ctx context.Context) (string, error)

// StaticToken is a personal access token or any other fixed token.
func StaticToken(token string) TokenSource {
	return func(context.Context) (string, error) { return token, nil }
}

// Transport authenticates every request through next with a token of ts.
func Transport(ts TokenSource, next http.RoundTripper) http.RoundTripper {
	return &authTransport{next: next, token: ts}
}

// App is a GitHub App installation to act as.
type App struct {
	ID             int64
	InstallationID int64
	PrivateKey     *rsa.PrivateKey
}

// ParseAppKey parses a GitHub App's PEM private key.
func ParseAppKey(pem []byte) (*rsa.PrivateKey, error) {
	k, err := jwt.ParseRSAPrivateKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("github app private key: %w", err)
	}
	return k, nil
}

// refreshBefore is how long before its expiry an installation token is replaced.
const refreshBefore = 5 * time.Minute

// AppToken is the token source of the installation of app: it signs a JWT
// with the app's key, exchanges it at the API at baseURL for an
// installation token (through next), caches the token and mints a new one
// shortly before it expires.
func AppToken(baseURL string, app App, next http.RoundTripper) (TokenSource, error) {
	if app.ID <= 0 || app.InstallationID <= 0 || app.PrivateKey == nil {
		return nil, fmt.Errorf("github app: need an app id, an installation id and a private key")
	}
	jwtClient, err := New(baseURL, &http.Client{Transport: &authTransport{next: next, token: func(context.Context) (string, error) {
		now := time.Now()
		// iat a minute back allows for clock drift, as GitHub recommends.
		claims := jwt.RegisteredClaims{
			Issuer:    strconv.FormatInt(app.ID, 10),
			IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
		}
		return jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(app.PrivateKey)
	}}})
	if err != nil {
		return nil, err
	}
	it := &installationToken{api: jwtClient.api, id: app.InstallationID, now: time.Now}
	return it.get, nil
}

type installationToken struct {
	api *gh.Client
	id  int64
	now func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

func (t *installationToken) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.now().Before(t.expires.Add(-refreshBefore)) {
		return t.token, nil
	}
	tok, _, err := t.api.Apps.CreateInstallationToken(ctx, t.id, nil)
	if err != nil {
		return "", fmt.Errorf("github app installation %d token: %w", t.id, err)
	}
	t.token, t.expires = tok.GetToken(), tok.GetExpiresAt().Time
	return t.token, nil
}

type authTransport struct {
	next  http.RoundTripper
	token TokenSource
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := a.token(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+tok)
	next := a.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// Connect builds the client of api: its base URL, authenticated with its
// token or as its GitHub App installation (anonymous with neither), through
// next (nil: http.DefaultTransport). The token source is nil when anonymous.
// Errors name the field of api ("app.privateKey", "baseURL"). It does not dial.
func Connect(api config.GitHubAPI, next http.RoundTripper) (*Client, TokenSource, error) {
	if next == nil {
		next = http.DefaultTransport
	}
	var ts TokenSource
	switch {
	case api.App != nil:
		key, err := ParseAppKey([]byte(api.App.PrivateKey.Reveal()))
		if err != nil {
			return nil, nil, fmt.Errorf("app.privateKey: %w", err)
		}
		ts, err = AppToken(api.BaseURL, App{ID: api.App.ID, InstallationID: api.App.InstallationID, PrivateKey: key}, next)
		if err != nil {
			return nil, nil, fmt.Errorf("app: %w", err)
		}
	case !api.Token.IsZero():
		ts = StaticToken(api.Token.Reveal())
	}
	transport := next
	if ts != nil {
		transport = Transport(ts, next)
	}
	c, err := New(api.BaseURL, &http.Client{Transport: transport, Timeout: time.Minute})
	if err != nil {
		return nil, nil, fmt.Errorf("baseURL: %w", err)
	}
	return c, ts, nil
}
