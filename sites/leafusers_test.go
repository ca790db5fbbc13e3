package sites_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
	"github.com/goaiot/goaiot/sites"
)

func TestParseLeafUsers(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		users int
		err   string
	}{
		{"two sites, comments skipped", "# leaf users\nparis secret\n\nlyon $2a$10$x\n", 2, ""},
		{"no password", "paris\n", 0, "line 1"},
		{"three fields", "# c\nparis a b\n", 0, "line 2"},
		{"bad site name", "a.b secret\n", 0, "site name"},
		{"hub is reserved", "hub secret\n", 0, "reserved"},
		{"site given twice", "paris a\nparis b\n", 0, "given twice"},
		{"empty", "# nothing\n", 0, "no users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, err := sites.ParseLeafUsers(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseLeafUsers = %v, %v; want error %q", users, err, tt.err)
				}
				return
			}
			if err != nil || len(users) != tt.users {
				t.Fatalf("ParseLeafUsers = %d users, %v; want %d", len(users), err, tt.users)
			}
			for _, u := range users {
				if len(u.Publish) == 0 || u.Publish[0] != sites.SubjectTree(u.User) {
					t.Errorf("user %s may publish %v, want its own tree first", u.User, u.Publish)
				}
			}
		})
	}
}

func TestLoadLeafUsersNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leaf-users")
	if err := os.WriteFile(path, []byte("paris\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sites.LoadLeafUsers(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("LoadLeafUsers = %v; want the path and line 1", err)
	}
}

// FuzzParseLeafUsers: any file is refused or gives only valid site names,
// each allowed its own tree.
func FuzzParseLeafUsers(f *testing.F) {
	f.Add("paris secret\n# c\nlyon x\n")
	f.Add("hub x\n")
	f.Add("a.b c\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		users, err := sites.ParseLeafUsers(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, u := range users {
			if sites.ValidateName(u.User) != nil || u.Password == "" || u.Publish[0] != sites.SubjectTree(u.User) {
				t.Fatalf("accepted %+v", u)
			}
		}
	})
}

// FuzzParseHeartbeat: an accepted heartbeat names a valid site and a
// positive interval.
func FuzzParseHeartbeat(f *testing.F) {
	f.Add([]byte(`{"site":"paris","ts":1,"interval_ms":2000,"nodes":["a"]}`))
	f.Add([]byte(`{"site":"hub","interval_ms":1}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hb, err := sites.ParseHeartbeat(data)
		if err == nil && (sites.ValidateName(hb.Site) != nil || hb.Interval <= 0) {
			t.Fatalf("accepted %+v", hb)
		}
	})
}

// TestMonitorHTTP: the monitor serves its view (as on aiot.sites) and its
// own metrics over HTTP.
func TestMonitorHTTP(t *testing.T) {
	srv := bustest.StartServer(t)
	nc := bustest.Connect(t, srv)
	mon, err := sites.NewMonitor(sites.MonitorConfig{Conn: nc, Logger: bustest.Logger(t), NoSources: true})
	if err != nil {
		t.Fatal(err)
	}
	run(t, mon)
	waitMonitor(t, nc)
	heartbeat(t, nc, "paris", "n1")
	tests := []struct {
		name  string
		h     http.Handler
		ctype string
		check func(body string) bool
	}{
		{"sites", mon.Handler(), "application/json", func(body string) bool {
			var v struct {
				Sites      []sites.SiteInfo    `json:"sites"`
				Collisions map[string][]string `json:"collisions"`
			}
			return json.Unmarshal([]byte(body), &v) == nil && len(v.Sites) == 1 && v.Sites[0].Site == "paris"
		}},
		{"metrics", mon.MetricsHandler(), "text/plain", func(body string) bool {
			return strings.Contains(body, "aiot_site_heartbeats_total 1")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bustest.Eventually(t, 10*time.Second, "GET "+tt.name+" shows the site", func() error {
				rec := httptest.NewRecorder()
				tt.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				return bustest.Want(strings.HasPrefix(rec.Header().Get("Content-Type"), tt.ctype) && tt.check(rec.Body.String()),
					"content type", rec.Header().Get("Content-Type"), "body", rec.Body.String())
			})
		})
	}
}
