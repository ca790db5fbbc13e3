package origin

import (
	"net/http/httptest"
	"testing"
)

func TestPolicy(t *testing.T) {
	tests := []struct {
		name, origin string
		loopback     bool
		want         bool
	}{
		{"no origin: not a browser", "", false, true},
		{"same host", "http://gw.lan:8080", false, true},
		{"same host, other case", "http://GW.lan:8080", false, true},
		{"allow-listed", "https://ops.example", false, true},
		{"allow-listed with default port", "https://ops.example:443", false, true},
		{"foreign", "http://evil.example", false, false},
		{"allow-listed host, other port", "https://ops.example:8443", false, false},
		{"loopback page refused by default", "http://localhost:3000", false, false},
		{"loopback page when asked", "http://localhost:3000", true, true},
		{"loopback address when asked", "http://127.0.0.1:3000", true, true},
		{"null origin", "null", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New([]string{"https://ops.example"}, tt.loopback)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "http://gw.lan:8080/ws", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := p.Allow(r); got != tt.want {
				t.Fatalf("Allow(%q) = %v, want %v", tt.origin, got, tt.want)
			}
		})
	}
}

func TestNewRefusesBadEntries(t *testing.T) {
	for _, bad := range []string{"ftp://x", "http://", "http://x/path", "http://u@x", "http://x?q=1"} {
		if _, err := New([]string{bad}, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p, err := New([]string{"*"}, false)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "http://a/", nil)
	r.Header.Set("Origin", "http://anything.example")
	if !p.Allow(r) {
		t.Fatal("* refused an origin")
	}
}
