package dashboard

import (
	"net/http"
)

func (d *Dashboard) checkOrigin(r *http.Request) bool {
	if d.origins.Allow(r) {
		return true
	}
	d.m.origins.Inc()
	d.log.Warn("websocket origin refused", "origin", r.Header.Get("Origin"), "host", r.Host, "remote", r.RemoteAddr)
	return false
}

func (d *Dashboard) handshakeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	http.Error(w, reason.Error(), status)
}
