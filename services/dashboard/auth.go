package dashboard

import (
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/goaiot/goaiot/internal/origin"
)

// What a browser that has not logged in may do (Config.Anonymous).
const (
	// AnonymousAuto: operator for a browser on this machine when no users
	// are configured (the zero-config demo), viewer otherwise.
	AnonymousAuto = "auto"
	// AnonymousViewer: every browser that has not logged in is a viewer.
	AnonymousViewer = "viewer"
	// AnonymousOperator: every browser may send commands without logging in.
	AnonymousOperator = "operator"
	// AnonymousNone: /ws is refused (401) to browsers that have not logged in.
	AnonymousNone = "none"
)

// SessionCookie is the cookie holding a browser's session id.
const SessionCookie = "aiot_session"

// maxLoginBody bounds the body of POST /login.
const maxLoginBody = 4 << 10

// Outcomes of a login attempt, the label of aiot_dashboard_logins_total.
const (
	loginOK      = "ok"
	loginBad     = "bad_credentials"
	loginLimited = "rate_limited"
	loginRefused = "refused" // origin, method, content type, body, login off
)

// identity is who a browser is: a logged-in user, or anonymous (user "").
type identity struct {
	user    string
	role    string // RoleViewer or RoleOperator
	session string // session id, "" when anonymous
}

// identify returns who made r; ok is false when r must log in first.
func (d *Dashboard) identify(r *http.Request) (id identity, ok bool) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if ss, live := d.sessions.get(c.Value); live {
			return identity{user: ss.user, role: d.cap(ss.role), session: c.Value}, true
		}
	}
	role := d.anonymousRole(r)
	if role == "" {
		return identity{}, false
	}
	return identity{role: d.cap(role)}, true
}

// cap lowers every role to viewer on a read-only dashboard.
func (d *Dashboard) cap(role string) string {
	if d.cfg.ReadOnly {
		return RoleViewer
	}
	return role
}

// anonymousRole is the role of a browser that has not logged in; "" when
// it must log in.
func (d *Dashboard) anonymousRole(r *http.Request) string {
	switch d.cfg.Anonymous {
	case AnonymousViewer:
		return RoleViewer
	case AnonymousOperator:
		return RoleOperator
	case AnonymousNone:
		return ""
	}
	if d.cfg.Users == nil && isLocalRequest(r) {
		return RoleOperator
	}
	return RoleViewer
}

// isLocalRequest reports whether r comes straight from this machine: a
// loopback peer, no proxy in between (no forwarding header: a reverse proxy
// on this machine makes every request look local), and a loopback Host
// (a page on another site whose name was rebound to 127.0.0.1 sends its own
// name, not localhost: DNS rebinding gets no operator).
func isLocalRequest(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(peer); ip == nil || !ip.IsLoopback() {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return origin.IsLoopback(strings.Trim(host, "[]"))
}

// loginStatus is the body of GET /login and of the answers of POST /login
// and /logout.
type loginStatus struct {
	User  string `json:"user"`  // "" when anonymous
	Role  string `json:"role"`  // "viewer", "operator", or "" (must log in)
	Login bool   `json:"login"` // users are configured: logging in is possible
	Error string `json:"error,omitempty"`
}

func (d *Dashboard) status(id identity) loginStatus {
	return loginStatus{User: id.user, Role: id.role, Login: d.cfg.Users != nil}
}

// serveLogin answers GET /login (who am I) and POST /login
// {"user","password"}, which sets the session cookie.
func (d *Dashboard) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id, _ := d.identify(r)
		writeJSON(w, http.StatusOK, d.status(id))
		return
	case http.MethodPost:
	default:
		d.loginRefused(w, r, http.StatusMethodNotAllowed, "use GET or POST")
		return
	}
	if !d.postAllowed(w, r) {
		return
	}
	if d.cfg.Users == nil {
		d.loginRefused(w, r, http.StatusNotFound, "login is off: the dashboard has no users file")
		return
	}
	var creds struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxLoginBody))
	if err := dec.Decode(&creds); err != nil {
		d.loginRefused(w, r, http.StatusBadRequest, "want {\"user\":…,\"password\":…}")
		return
	}
	if !d.logins.Allow() {
		d.m.logins.WithLabelValues(loginLimited).Inc()
		d.log.Warn("login refused: too many attempts", "limit_per_s", d.cfg.LoginRate, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, loginStatus{Login: true, Error: "too many login attempts: try again in a second"})
		return
	}
	user, ok := d.cfg.Users.authenticate(creds.User, creds.Password)
	if !ok {
		d.m.logins.WithLabelValues(loginBad).Inc()
		d.log.Warn("login failed", "user", fmt.Sprintf("%.64q", creds.User), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, loginStatus{Login: true, Error: "bad user or password"})
		return
	}
	sid, exp, err := d.sessions.create(user.Name, user.Role)
	if err != nil {
		d.log.Error("login", "err", err)
		writeJSON(w, http.StatusInternalServerError, loginStatus{Login: true, Error: "no session"})
		return
	}
	d.m.logins.WithLabelValues(loginOK).Inc()
	d.m.sessions.Set(float64(d.sessions.count()))
	d.log.Info("login", "user", user.Name, "role", user.Role, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: sid, Path: "/", Expires: exp, MaxAge: int(time.Until(exp).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, d.status(identity{user: user.Name, role: d.cap(user.Role), session: sid}))
}

// serveLogout answers POST /logout: the session ends and its cookie is
// cleared. Browsers still connected with it lose their role at their next
// command.
func (d *Dashboard) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		d.loginRefused(w, r, http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !d.postAllowed(w, r) {
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil && d.sessions.end(c.Value) {
		d.log.Info("logout", "remote", r.RemoteAddr)
	}
	d.m.sessions.Set(float64(d.sessions.count()))
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	r.Header.Del("Cookie")
	id, _ := d.identify(r)
	writeJSON(w, http.StatusOK, d.status(id))
}

// postAllowed refuses a POST from a foreign page (its Origin) or that is
// not JSON (a cross-site form cannot send application/json without a CORS
// preflight, which this server never grants).
func (d *Dashboard) postAllowed(w http.ResponseWriter, r *http.Request) bool {
	if !d.origins.Allow(r) {
		d.m.origins.Inc()
		d.log.Warn("login origin refused", "path", r.URL.Path, "origin", r.Header.Get("Origin"), "remote", r.RemoteAddr)
		d.loginRefused(w, r, http.StatusForbidden, "origin not allowed")
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		d.loginRefused(w, r, http.StatusUnsupportedMediaType, "send application/json")
		return false
	}
	return true
}

func (d *Dashboard) loginRefused(w http.ResponseWriter, r *http.Request, code int, why string) {
	d.m.logins.WithLabelValues(loginRefused).Inc()
	d.log.Debug("login request refused", "path", r.URL.Path, "code", code, "why", why, "remote", r.RemoteAddr)
	writeJSON(w, code, loginStatus{Login: d.cfg.Users != nil, Error: why})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// RequireViewer serves h only to browsers that may open /ws (a viewer at
// least, logged in or anonymous by Config.Anonymous); others get the 401
// /ws answers. For pages of the same listener that show what browsers see,
// e.g. a hub's /sites.
func (d *Dashboard) RequireViewer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := d.identify(r); !ok {
			d.m.unauth.Inc()
			http.Error(w, "log in first (POST /login)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
