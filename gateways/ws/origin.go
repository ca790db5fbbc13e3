package ws

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which handshakes on /node may come from a browser
// page. A request without an Origin header is not a browser's and passes
// (Pyaiot's Android and embedded clients send none); so does one whose
// Origin names the host it is sent to (gorilla's default rule, which the
// Python websocket-client library meets by making its Origin up from the
// URL); any other origin must be on the allow-list. Unlike the dashboard's
// /ws, loopback pages are not let in: a page on localhost:3000 has no
// business claiming a node id.
type originPolicy struct {
	any     bool
	allowed map[string]bool // "scheme://host:port", lower case
}

// newOriginPolicy builds the policy from allow-list entries
// (scheme://host[:port], or "*" for any origin).
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

// allow reports whether r's Origin may open /node.
func (p *originPolicy) allow(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	norm, err := normalizeOrigin(origin)
	return err == nil && p.allowed[norm]
}
