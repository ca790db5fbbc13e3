// Package origin decides which web pages may open goaiot's websockets, from
// the Origin header of the handshake (RFC 6454): the dashboard's /ws and the
// websocket node gateway's /node share the rule, each with its own list.
package origin

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Policy admits a handshake without an Origin header (not a browser's:
// Pyaiot's Python and Android clients send none), one whose Origin names the
// host it is sent to (gorilla's default rule, which the Python
// websocket-client library meets by making its Origin up from the URL), the
// allow-list, and, when asked, pages served from localhost or a loopback
// address.
type Policy struct {
	any      bool
	loopback bool
	allowed  map[string]bool // "scheme://host:port", lower case
}

// New builds a policy from allow-list entries (scheme://host[:port], or "*"
// for any origin); loopback also admits pages on localhost and loopback
// addresses (the dashboard: Pyaiot's page runs on another port of the same
// machine).
func New(list []string, loopback bool) (*Policy, error) {
	p := &Policy{loopback: loopback, allowed: make(map[string]bool)}
	for _, o := range list {
		o = strings.TrimSpace(o)
		if o == "*" {
			p.any = true
			continue
		}
		norm, err := Normalize(o)
		if err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", o, err)
		}
		p.allowed[norm] = true
	}
	return p, nil
}

// Normalize lowercases an origin and adds the scheme's default port.
func Normalize(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("parse: %w", err)
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

// Allow reports whether r's Origin may open the websocket.
func (p *Policy) Allow(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) || (p.loopback && IsLoopback(u.Hostname())) {
		return true
	}
	norm, err := Normalize(origin)
	return err == nil && p.allowed[norm]
}

// IsLoopback reports whether host is localhost (or a name under .localhost)
// or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
