package dashboard

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which web pages may open /ws: requests without an
// Origin (not from a browser), the same origin, pages served from localhost
// or a loopback address (Pyaiot's page runs on another port), and the
// allow-list.
type originPolicy struct {
	any     bool
	allowed map[string]bool // "scheme://host:port", lower case
}

func newOriginPolicy(list []string) (*originPolicy, error) {
	p := &originPolicy{allowed: make(map[string]bool)}
	for _, o := range list {
		o = strings.TrimSpace(o)
		if o == "*" {
			p.any = true
			continue
		}
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", o, err)
		}
		p.allowed[norm] = true
	}
	return p, nil
}

// normalizeOrigin lowercases an origin and adds the scheme's default port.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("want scheme://host[:port]")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(host), port), nil
}

func (p *originPolicy) allow(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) || isLoopback(u.Hostname()) {
		return true
	}
	norm, err := normalizeOrigin(origin)
	return err == nil && p.allowed[norm]
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *Dashboard) checkOrigin(r *http.Request) bool {
	if d.origins.allow(r) {
		return true
	}
	d.m.origins.Inc()
	d.log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr)
	return false
}

func (d *Dashboard) handshakeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	http.Error(w, reason.Error(), status)
}
