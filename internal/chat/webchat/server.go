package webchat

import (
	"embed"
	"html/template"
	"io"
	"net/http"
	"net/url"
)

// ui holds the page, its style and its script: no build step, nothing
// fetched from elsewhere.
//
//go:embed ui
var ui embed.FS

var loginTemplate = template.Must(template.ParseFS(ui, "ui/login.html"))

// static are the files served under /static/, with their types.
var static = map[string]string{
	"app.js":    "text/javascript; charset=utf-8",
	"style.css": "text/css; charset=utf-8",
}

// maxBody bounds a POSTed request body.
const maxBody = 64 << 10

// contentSecurityPolicy allows the page's own script and style only: no
// inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// HTTPHandler serves the page and its API (see the package documentation
// for the addresses, relative to HTTPPrefix).
func (p *platform) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.servePage)
	mux.HandleFunc("GET /static/{file}", serveStatic)
	mux.HandleFunc("POST /login", p.serveLogin)
	mux.HandleFunc("POST /logout", p.serveLogout)
	mux.HandleFunc("GET /api/session", p.authed(p.serveSession))
	mux.HandleFunc("GET /api/events", p.authed(p.serveEvents))
	mux.HandleFunc("GET /api/files/{id}", p.authed(p.serveFile))
	mux.HandleFunc("POST /api/messages", p.authed(p.serveMessage))
	mux.HandleFunc("POST /api/actions", p.authed(p.serveAction))
	// Browsers say where a request comes from (Sec-Fetch-Site, Origin):
	// a POST from any other site is refused, so a page elsewhere cannot
	// run commands with a signed-in user's cookie or basic credentials.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.log.Warn("refused a cross-origin request", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "cross-origin request refused: this page only accepts requests from itself")
	}))
	return withSecurityHeaders(cop.Handler(mux))
}

func withSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authed passes on only authenticated requests, with who sent them.
func (p *platform) authed(next func(http.ResponseWriter, *http.Request, identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := p.auth.authenticate(r)
		if !ok {
			p.auth.challenge(w)
			writeError(w, http.StatusUnauthorized, "sign in first: "+p.signInHint())
			return
		}
		next(w, r, id)
	}
}

func (p *platform) signInHint() string {
	if p.s.Auth == authBasic {
		return "this web chat uses HTTP basic auth"
	}
	return "open the page with ?token=<token>, or send Authorization: Bearer <token>"
}

// servePage serves the page to a signed-in browser, and signs one in.
func (p *platform) servePage(w http.ResponseWriter, r *http.Request) {
	if p.s.Auth == authToken && r.URL.Query().Has("token") {
		// Sign in once, then get the token out of the address bar and history.
		if !p.auth.tokenOK(r.URL.Query().Get("token")) {
			p.loginPage(w, r, http.StatusUnauthorized, "That token is not valid.")
			return
		}
		p.auth.setSession(w, r)
		toPage(w)
		return
	}
	if _, ok := p.auth.authenticate(r); !ok {
		if p.s.Auth == authToken {
			p.loginPage(w, r, http.StatusUnauthorized, "")
			return
		}
		p.auth.challenge(w)
		http.Error(w, "sign in to use this web chat", http.StatusUnauthorized)
		return
	}
	page, err := ui.ReadFile("ui/index.html")
	if err != nil { // embedded: cannot happen
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

// loginPage shows the token sign-in form.
func (p *platform) loginPage(w http.ResponseWriter, r *http.Request, status int, problem string) {
	// A SameSite=Strict cookie is not sent on a navigation from another
	// site (a link in an alert e-mail): reload once from here, when the
	// browser sends it, instead of asking to sign in again.
	refresh := r.Header.Get("Sec-Fetch-Site") == "cross-site" && problem == ""
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = loginTemplate.Execute(w, struct {
		Title, Problem string
		Refresh        bool
	}{p.s.Title, problem, refresh})
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	typ, ok := static[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := ui.ReadFile("ui/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", typ)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// serveLogin takes the sign-in form's token.
func (p *platform) serveLogin(w http.ResponseWriter, r *http.Request) {
	if p.s.Auth != authToken {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, "read form: "+err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || !p.auth.tokenOK(form.Get("token")) {
		p.log.Warn("refused a sign-in with a wrong token", "remote", r.RemoteAddr)
		p.loginPage(w, r, http.StatusUnauthorized, "That token is not valid.")
		return
	}
	p.auth.setSession(w, r)
	toPage(w)
}

func (p *platform) serveLogout(w http.ResponseWriter, r *http.Request) {
	p.auth.clearSession(w, r)
	toPage(w)
}

// toPage redirects to the page. The address is relative, so that the
// browser resolves it against what it asked for, wherever the page is
// mounted (http.Redirect would resolve it against the stripped path).
func toPage(w http.ResponseWriter) {
	w.Header().Set("Location", "./")
	w.WriteHeader(http.StatusSeeOther)
}

// session is what the page learns about itself.
type session struct {
	User     identity `json:"user"`
	Auth     string   `json:"auth"`
	Title    string   `json:"title"`
	Cluster  string   `json:"cluster,omitempty"`
	BotName  string   `json:"botName"`
	Channels []string `json:"channels"`
	// Last is the id of the latest event.
	Last string `json:"last"`
}

func (p *platform) serveSession(w http.ResponseWriter, _ *http.Request, id identity) {
	writeJSON(w, http.StatusOK, session{User: id, Auth: p.s.Auth, Title: p.s.Title, Cluster: p.cluster,
		BotName: p.s.BotName, Channels: p.s.Channels, Last: p.hub.last()})
}
