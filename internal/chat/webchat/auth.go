package webchat

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// sessionCookie holds a token sign-in. It carries no path, so the browser
// scopes it to the directory of the page (/chat/<name>), wherever a
// reverse proxy mounts it.
const sessionCookie = "kubechat_session"

// Who a request acts as when the web chat has no single user to name.
const (
	tokenUser     = "token"     // every holder of the token
	anonymousUser = "anonymous" // auth: none
)

// identity is the signed-in person.
type identity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// authenticator checks requests against the configured sign-in. Secrets
// are compared as SHA-256 digests in constant time, so that neither their
// content nor their length leaks through timing.
type authenticator struct {
	mode  string
	realm string
	token [sha256.Size]byte
	users []account
	known bcryptOK
	// dummy is compared with when no bcrypt account has the name given.
	dummy []byte
	// sessionKey signs session cookies: derived from the token, so that a
	// new token ends every session, and sessions survive a restart.
	sessionKey []byte
	scope      string // binds a cookie to this web chat
	ttl        time.Duration
	now        func() time.Time
}

type account struct {
	name     string
	nameSum  [sha256.Size]byte
	password [sha256.Size]byte
	// hash is the bcrypt hash of passwordHash accounts (password is unused).
	hash []byte
}

// bcryptOK remembers credentials that matched a bcrypt hash, as the
// SHA-256 of name, password and hash: bcrypt takes tens of milliseconds
// by design, and the page sends credentials with every request.
type bcryptOK struct {
	mu sync.Mutex
	ok map[[sha256.Size]byte]bool
}

// maxBcryptCache bounds the remembered credentials; past it, the cache starts over.
const maxBcryptCache = 1024

func newAuthenticator(name string, s Settings) *authenticator {
	a := &authenticator{mode: s.Auth, realm: "kubechat " + name, scope: name, ttl: s.SessionTTL.D(), now: time.Now}
	switch s.Auth {
	case authToken:
		a.token = sha256.Sum256([]byte(s.Token.Reveal()))
		mac := hmac.New(sha256.New, []byte(s.Token.Reveal()))
		mac.Write([]byte("kubechat webchat session key"))
		a.sessionKey = mac.Sum(nil)
	case authBasic:
		for _, u := range s.Users {
			acc := account{name: u.Name, nameSum: sha256.Sum256([]byte(u.Name))}
			if u.PasswordHash != "" {
				acc.hash = []byte(u.PasswordHash)
				if a.dummy == nil {
					cost, _ := bcrypt.Cost(acc.hash)
					a.dummy, _ = bcrypt.GenerateFromPassword([]byte(u.Name+" has no such password"), cost)
				}
			} else {
				acc.password = sha256.Sum256([]byte(u.Password.Reveal()))
			}
			a.users = append(a.users, acc)
		}
	}
	return a
}

// authenticate returns who r comes from: a bearer token or a session
// cookie (auth: token), basic credentials (auth: basic), or anyone
// (auth: none).
func (a *authenticator) authenticate(r *http.Request) (identity, bool) {
	switch a.mode {
	case authNone:
		return identity{ID: anonymousUser, Name: anonymousUser}, true
	case authToken:
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && a.tokenOK(bearer) {
			return identity{ID: tokenUser, Name: tokenUser}, true
		}
		if c, err := r.Cookie(sessionCookie); err == nil && a.sessionOK(c.Value) {
			return identity{ID: tokenUser, Name: tokenUser}, true
		}
	case authBasic:
		name, password, ok := r.BasicAuth()
		if !ok {
			return identity{}, false
		}
		nameSum, passwordSum := sha256.Sum256([]byte(name)), sha256.Sum256([]byte(password))
		found, named := -1, false
		// Look at every account, so that the time taken tells nothing.
		for i, u := range a.users {
			nameOK := subtle.ConstantTimeCompare(nameSum[:], u.nameSum[:])
			named = named || nameOK == 1 && u.hash != nil
			if u.hash != nil {
				if nameOK == 1 && a.known.check(u.hash, name, password) {
					found = i
				}
				continue
			}
			if nameOK&subtle.ConstantTimeCompare(passwordSum[:], u.password[:]) == 1 {
				found = i
			}
		}
		if !named && a.dummy != nil {
			// An unknown name costs a bcrypt comparison too, so that the
			// time taken does not tell which names have accounts.
			_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		}
		if found >= 0 {
			return identity{ID: a.users[found].name, Name: a.users[found].name}, true
		}
	}
	return identity{}, false
}

// check compares password with a bcrypt hash, remembering a match.
func (b *bcryptOK) check(hash []byte, name, password string) bool {
	key := sha256.Sum256([]byte(name + "\x00" + password + "\x00" + string(hash)))
	b.mu.Lock()
	ok := b.ok[key]
	b.mu.Unlock()
	if ok {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	b.mu.Lock()
	if b.ok == nil || len(b.ok) >= maxBcryptCache {
		b.ok = map[[sha256.Size]byte]bool{}
	}
	b.ok[key] = true
	b.mu.Unlock()
	return true
}

// tokenOK compares a presented token with the configured one.
func (a *authenticator) tokenOK(presented string) bool {
	sum := sha256.Sum256([]byte(presented))
	return a.mode == authToken && subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1
}

// session returns a cookie value valid until now + ttl:
// "<expiry unix seconds>.<base64url HMAC of scope and expiry>".
func (a *authenticator) session() (value string, expires time.Time) {
	expires = a.now().Add(a.ttl).Truncate(time.Second)
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "." + a.sign(exp), expires
}

func (a *authenticator) sign(exp string) string {
	mac := hmac.New(sha256.New, a.sessionKey)
	mac.Write([]byte(a.scope + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// sessionOK checks a cookie value's signature and expiry.
func (a *authenticator) sessionOK(value string) bool {
	exp, sig, ok := strings.Cut(value, ".")
	if !ok {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !a.now().Before(time.Unix(unix, 0)) {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(a.sign(exp)))
}

// setSession signs the browser in.
func (a *authenticator) setSession(w http.ResponseWriter, r *http.Request) {
	value, expires := a.session()
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Expires: expires, MaxAge: int(a.ttl / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// clearSession signs the browser out.
func (a *authenticator) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
}

// challenge tells a client how to authenticate.
func (a *authenticator) challenge(w http.ResponseWriter) {
	switch a.mode {
	case authBasic:
		w.Header().Set("WWW-Authenticate", `Basic realm="`+a.realm+`", charset="UTF-8"`)
	case authToken:
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+a.realm+`"`)
	}
}

// secure reports whether the browser reached the agent over HTTPS,
// directly or through a proxy that says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
