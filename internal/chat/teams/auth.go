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
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// verifier checks the JWT on inbound Bot Framework requests
// (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication).
type verifier struct {
	keys   keyfunc.Keyfunc
	issuer string
	parser *jwt.Parser
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
	return &verifier{
		keys:   keys,
		issuer: meta.Issuer,
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
// names serviceURL; the token's serviceurl claim must match it, so a token
// cannot send the agent's replies elsewhere.
func (v *verifier) check(authorization, serviceURL string) error {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || raw == "" {
		return errors.New("no bearer token")
	}
	claims := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(raw, claims, v.keys.Keyfunc); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	claimed, _ := claims["serviceurl"].(string)
	if claimed == "" || strings.TrimSuffix(claimed, "/") != strings.TrimSuffix(serviceURL, "/") {
		return fmt.Errorf("token serviceurl %q does not match the activity's %q", claimed, serviceURL)
	}
	return nil
}
