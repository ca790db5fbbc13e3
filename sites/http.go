package sites

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// siteList is the monitor's view: the answer of aiot.sites and GET /sites.
type siteList struct {
	Sites      []SiteInfo          `json:"sites"`
	Collisions map[string][]string `json:"collisions"`
}

func (mo *Monitor) view() siteList {
	return siteList{Sites: mo.Sites(), Collisions: mo.Collisions()}
}

// Handler serves the monitor's view as JSON, the same document as the
// answer on aiot.sites: {"sites":[…],"collisions":{uid:[sites]}}. It does
// no access control: wrap it (the hub serves it behind the dashboard's
// login as /sites).
func (mo *Monitor) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(mo.view())
	})
}

// MetricsHandler serves the monitor's own metrics in Prometheus form (the
// hub's /metrics/sites), apart from the dashboard's /metrics.
func (mo *Monitor) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(mo.reg, promhttp.HandlerOpts{})
}
