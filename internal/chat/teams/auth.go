package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// verifier checks the JWT on inbound Bot Framework requests
// (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
type verifier struct {
	keys         keyfunc.Keyfunc
	issuer       string
	parser       *jwt.Parser
	endorsements *endorsements
}

// openIDConfig is the part of the OpenID metadata the verifier needs.
type openIDConfig struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// newVerifier reads the OpenID metadata at openIDURL and loads its JWKS,
// which keyfunc refreshes in the background until ctx ends.
func newVerifier(ctx context.Context, client *http.Client, openIDURL, audience string, log *slog.Logger) (*verifier, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, openIDURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get OpenID metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get OpenID metadata %s: HTTP %d", openIDURL, resp.StatusCode)
	}
	var meta openIDConfig
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil {
		return nil, fmt.Errorf("decode OpenID metadata %s: %w", openIDURL, err)
	}
	if meta.JWKSURI == "" {
		return nil, fmt.Errorf("OpenID metadata %s has no jwks_uri", openIDURL)
	}
	if meta.Issuer == "" {
		meta.Issuer = botFrameworkIssuer
	}
	fail := false
	keys, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{meta.JWKSURI}, keyfunc.Override{
		Client:                    client,
		NoErrorReturnFirstHTTPReq: &fail,
		RefreshInterval:           12 * time.Hour,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				log.Warn("cannot refresh Bot Framework signing keys", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys from %s: %w", meta.JWKSURI, err)
	}
	endorsed := &endorsements{client: client, url: meta.JWKSURI}
	if err := endorsed.load(ctx); err != nil {
		return nil, err
	}
	return &verifier{
		keys:         keys,
		endorsements: endorsed,
		issuer:       meta.Issuer,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256"}),
			jwt.WithIssuer(meta.Issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Minute), // the clock skew the Bot Framework allows
		),
	}, nil
}

// check validates the Authorization header of a request whose activity
// names serviceURL and channelID. The token's serviceurl claim must match
// serviceURL, so a token cannot send the agent's replies elsewhere, and
// the key that signed it must be endorsed for channelID, as the Bot
// Framework requires (a key endorsed for the web chat cannot sign Teams
// activities). An empty channelID only authenticates the caller.
func (v *verifier) check(ctx context.Context, authorization, serviceURL, channelID string) error {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || raw == "" {
		return errors.New("no bearer token")
	}
	claims := jwt.MapClaims{}
	token, err := v.parser.ParseWithClaims(raw, claims, v.keys.Keyfunc)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	if channelID == "" && serviceURL == "" {
		return nil
	}
	kid, _ := token.Header["kid"].(string)
	if !v.endorsements.allows(ctx, kid, channelID) {
		return fmt.Errorf("token: the signing key %q is not endorsed for channel %q", kid, channelID)
	}
	claimed, _ := claims["serviceurl"].(string)
	if claimed == "" || strings.TrimSuffix(claimed, "/") != strings.TrimSuffix(serviceURL, "/") {
		return fmt.Errorf("token serviceurl %q does not match the activity's %q", claimed, serviceURL)
	}
	return nil
}

// endorsements are the channels each signing key of the JWKS is endorsed
// for (its "endorsements" member, which JWT libraries do not keep).
type endorsements struct {
	client *http.Client
	url    string

	mu     sync.Mutex
	byKid  map[string][]string
	loaded time.Time
}

// endorsementsRefresh is how often the JWKS is read again for a key it did
// not list, and at most how old the list gets.
const endorsementsRefresh = time.Minute

func (e *endorsements) load(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("get signing keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get signing keys %s: HTTP %d", e.url, resp.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kid          string   `json:"kid"`
			Endorsements []string `json:"endorsements"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("decode signing keys %s: %w", e.url, err)
	}
	by := map[string][]string{}
	for _, k := range set.Keys {
		by[k.Kid] = k.Endorsements
	}
	e.mu.Lock()
	e.byKid, e.loaded = by, time.Now()
	e.mu.Unlock()
	return nil
}

// allows reports whether the key kid is endorsed for channelID. A key the
// list does not have (rotated in since) makes it read the JWKS again, at
// most once a minute.
func (e *endorsements) allows(ctx context.Context, kid, channelID string) bool {
	if channelID == "" {
		return false
	}
	e.mu.Lock()
	list, ok := e.byKid[kid]
	stale := time.Since(e.loaded) > endorsementsRefresh
	e.mu.Unlock()
	if !ok && stale && e.load(ctx) == nil {
		e.mu.Lock()
		list = e.byKid[kid]
		e.mu.Unlock()
	}
	for _, c := range list {
		if strings.EqualFold(c, channelID) {
			return true
		}
	}
	return false
}
