package teamstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kubechat/kubechat/internal/chat/chattest/fake"
)

// This file is the identity side of the fake: the Microsoft Entra ID token
// endpoint the bot takes its outbound tokens from (OAuth 2.0 client
// credentials), and the Bot Connector Service's OpenID metadata, JWKS and
// the JWTs it signs inbound activities with:
// https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-authentication

const (
	// keyID is the kid of the server's signing key, listed in its JWKS;
	// unknownKeyID that of WithUnknownKey's, which no JWKS lists; and
	// webChatKeyID that of WithWebChatKey's, listed but endorsed for the
	// webchat channel only.
	keyID, unknownKeyID, webChatKeyID = "fake-key-1", "unknown-key", "webchat-key"
	keyBits                           = 2048
	// tokenScope is the only scope the token endpoint grants.
	tokenScope = "https://api.botframework.com/.default"
	// accessTokenTTL and inboundTokenTTL are how long access tokens and the
	// tokens of inbound activities are valid.
	accessTokenTTL, inboundTokenTTL = time.Hour, time.Hour
	// clockSkew backdates nbf and iat of minted tokens, as the real service does.
	clockSkew = time.Minute

	// Paths served on the fake's host. The token endpoint answers on both the
	// multi-tenant ("botframework.com") and the single-tenant path.
	openIDPath      = "/v1/.well-known/openidconfiguration"
	jwksPath        = "/v1/.well-known/keys"
	tokenPath       = "/botframework.com/oauth2/v2.0/token"
	tenantTokenPath = "/" + TenantID + "/oauth2/v2.0/token"
)

// unknownKey and webChatKey are the keys WithUnknownKey and WithWebChatKey
// sign with, made once per process, on first use.
var unknownKey, webChatKey = sync.OnceValues(newKey), sync.OnceValues(newKey)

func newKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, keyBits)
}

// OpenIDURL returns the URL of the OpenID metadata document that points the
// bot at the JWKS (the fake's counterpart of
// https://login.botframework.com/v1/.well-known/openidconfiguration).
func (s *Server) OpenIDURL() string {
	return s.URL() + openIDPath
}

// JWKSURL returns the URL of the JSON Web Key Set holding the public half of
// the key inbound activities are signed with.
func (s *Server) JWKSURL() string {
	return s.URL() + jwksPath
}

// TokenURL returns the URL of the OAuth 2.0 token endpoint the bot gets its
// Bot Connector access tokens from (the fake's counterpart of
// https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token). The
// single-tenant path, with TenantID in place of botframework.com, works too.
func (s *Server) TokenURL() string {
	return s.URL() + tokenPath
}

// TokenRequests returns how many access tokens the token endpoint has issued.
// Refused requests are not counted.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// serveOpenID serves the OpenID metadata document.
func (s *Server) serveOpenID(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	fake.WriteJSON(w, http.StatusOK, object{
		"issuer":                                Issuer,
		"jwks_uri":                              s.JWKSURL(),
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256"},
	})
}

// serveJWKS serves the JSON Web Key Set. Like the Bot Connector Service's
// keys, the key carries the channels it is endorsed for; a validator should
// check that they include the activity's channelId ("msteams").
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	jwk := func(pub *rsa.PublicKey, kid string, endorsements ...string) object {
		return object{
			"kty": "RSA", "use": "sig", "kid": kid, "alg": "RS256", "endorsements": endorsements,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}
	}
	keys := []object{jwk(&s.key.PublicKey, keyID, channelIDTeams)}
	if web, err := webChatKey(); err == nil {
		keys = append(keys, jwk(&web.PublicKey, webChatKeyID, "webchat"))
	}
	fake.WriteJSON(w, http.StatusOK, object{"keys": keys})
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// serveToken serves the token endpoint: the OAuth 2.0 client credentials
// grant, with the client's credentials in the form (client_secret_post) or
// in an HTTP Basic Authorization header (client_secret_basic). Errors follow
// RFC 6749 section 5.2, with Entra ID's statuses.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "The token endpoint only accepts POST.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request body must be a valid form.")
		return
	}
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	if user, password, ok := r.BasicAuth(); ok {
		clientID, secret = user, password
	}
	grant, scope := form.Get("grant_type"), form.Get("scope")
	switch {
	case grant == "" || clientID == "" || secret == "" || scope == "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request",
			"The request must include grant_type, client_id, client_secret and scope.")
	case grant != "client_credentials":
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Only client_credentials is supported.")
	case !constantTimeEqual(clientID, AppID) || !constantTimeEqual(secret, AppPassword):
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client id or client secret.")
	case scope != tokenScope:
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "The only scope granted is "+tokenScope+".")
	default:
		// A random access token, which the Connector REST API accepts until it expires.
		token := rand.Text()
		s.mu.Lock()
		s.tokens[token] = time.Now().Add(accessTokenTTL)
		s.issued++
		s.mu.Unlock()
		seconds := int(accessTokenTTL / time.Second)
		w.Header().Set("Cache-Control", "no-store")
		fake.WriteJSON(w, http.StatusOK, object{"token_type": "Bearer", "expires_in": seconds, "ext_expires_in": seconds, "access_token": token})
	}
}

// validAccessToken reports whether the token was issued by the token
// endpoint and has not expired.
func (s *Server) validAccessToken(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	expiry, ok := s.tokens[token]
	return ok && time.Now().Before(expiry)
}

func constantTimeEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	fake.WriteJSON(w, status, object{"error": code, "error_description": description})
}

// tokenSpec is what a minted inbound token says and how it is signed.
type tokenSpec struct {
	issuer, audience, serviceURL string
	expiry                       time.Time
	kid                          string                          // of the key that signs it
	otherKey                     func() (*rsa.PrivateKey, error) // signs it instead of the server's key
}

// TokenOption changes one aspect of a token minted by TokenWith, to make a
// token that a correct validator rejects.
type TokenOption func(*tokenSpec)

// WithAudience sets the aud claim instead of AppID.
func WithAudience(aud string) TokenOption {
	return func(spec *tokenSpec) { spec.audience = aud }
}

// WithExpiry sets the exp claim instead of an hour from now. An expiry in
// the past also moves nbf and iat back, to an hour before it.
func WithExpiry(exp time.Time) TokenOption {
	return func(spec *tokenSpec) { spec.expiry = exp }
}

// WithIssuer sets the iss claim instead of Issuer.
func WithIssuer(iss string) TokenOption {
	return func(spec *tokenSpec) { spec.issuer = iss }
}

// WithUnknownKey signs the token with an RSA key of kid "unknown-key" that
// the JWKS does not list.
func WithUnknownKey() TokenOption {
	return func(spec *tokenSpec) { spec.kid, spec.otherKey = unknownKeyID, unknownKey }
}

// WithWebChatKey signs the token with a key the JWKS lists, but endorsed
// for the webchat channel only: a validator that checks endorsements
// against the activity's channelId ("msteams") rejects it.
func WithWebChatKey() TokenOption {
	return func(spec *tokenSpec) { spec.kid, spec.otherKey = webChatKeyID, webChatKey }
}

// WithServiceURL sets the serviceurl claim to u instead of the service URL
// passed to TokenWith, so that it differs from the activity's serviceUrl.
func WithServiceURL(u string) TokenOption {
	return func(spec *tokenSpec) { spec.serviceURL = u }
}

// Token mints the JWT the Bot Connector Service sends with an inbound
// activity: RS256 with kid "fake-key-1", iss Issuer, aud AppID, the
// serviceurl claim set to serviceURL, nbf and iat a minute ago and exp in an
// hour. Send it as "Authorization: Bearer <token>".
func (s *Server) Token(serviceURL string) string {
	return s.TokenWith(serviceURL)
}

// TokenWith mints a token like Token after applying opts; tests use it to
// check that the bot rejects bad tokens. It panics only if signing fails,
// which crypto/rsa does not do with a valid key.
func (s *Server) TokenWith(serviceURL string, opts ...TokenOption) string {
	token, err := s.signToken(serviceURL, opts...)
	if err != nil {
		panic("teamstest: " + err.Error())
	}
	return token
}

func (s *Server) signToken(serviceURL string, opts ...TokenOption) (string, error) {
	now := time.Now()
	spec := tokenSpec{issuer: Issuer, audience: AppID, serviceURL: serviceURL, expiry: now.Add(inboundTokenTTL), kid: keyID}
	for _, opt := range opts {
		if opt != nil {
			opt(&spec)
		}
	}
	issued := now.Add(-clockSkew)
	if !spec.expiry.After(issued) {
		issued = spec.expiry.Add(-inboundTokenTTL)
	}
	key := s.key
	if spec.otherKey != nil {
		other, err := spec.otherKey()
		if err != nil {
			return "", fmt.Errorf("sign token: generate key %s: %w", spec.kid, err)
		}
		key = other
	}
	// MapClaims keeps aud a string, as in the Bot Connector's tokens;
	// RegisteredClaims would make it an array.
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": spec.issuer, "aud": spec.audience, "serviceurl": spec.serviceURL,
		"nbf": issued.Unix(), "iat": issued.Unix(), "exp": spec.expiry.Unix(),
	})
	token.Header["kid"] = spec.kid
	signed, err := token.SignedString(key)
	return signed, fake.Wrap(err, "sign token")
}
