package wssim

import (
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/goaiot/goaiot/bus/bustest"
)

func TestNewValidates(t *testing.T) {
	log := bustest.Logger(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no url", Config{Logger: log}},
		{"http url", Config{URL: "http://127.0.0.1/node", Logger: log}},
		{"bad url", Config{URL: "ws://[::1", Logger: log}},
		{"no logger", Config{URL: "ws://127.0.0.1/node"}},
		{"negative", Config{URL: "ws://127.0.0.1/node", Logger: log, SensorInterval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Errorf("New accepted %+v", tt.cfg)
			}
		})
	}
}

func TestIDInQuery(t *testing.T) {
	n, err := New(Config{URL: "ws://127.0.0.1:8080/node", ID: "my node", Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ws://127.0.0.1:8080/node?id=my+node"; n.url != want {
		t.Errorf("url %q, want %q", n.url, want)
	}
}

func TestSensorsLookReal(t *testing.T) {
	formats := map[string]*regexp.Regexp{
		"temperature": regexp.MustCompile(`^\d{2}\.\d°C$`),
		"pressure":    regexp.MustCompile(`^\d{4}\.\d{2}hPa$`),
		"humidity":    regexp.MustCompile(`^\d{2}\.\d{2}%$`),
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, c := range sensorCurves(rnd, time.Minute) {
		t.Run(c.name, func(t *testing.T) {
			lo, hi := c.base-c.amp-5*c.noise, c.base+c.amp+5*c.noise
			seen := map[float64]bool{}
			for s := range 60 {
				v := c.at(time.Duration(s)*time.Second, rnd)
				if v < lo || v > hi {
					t.Errorf("t=%ds: %.2f outside [%.2f, %.2f]", s, v, lo, hi)
				}
				seen[v] = true
			}
			if len(seen) < 30 {
				t.Errorf("only %d distinct readings in a minute", len(seen))
			}
		})
	}
	n, err := New(Config{URL: "ws://127.0.0.1/node", Logger: bustest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range n.sensors() {
		if !formats[name].MatchString(v) {
			t.Errorf("%s = %q, not RIOT's format", name, v)
		}
	}
}

func TestCheckRibot(t *testing.T) {
	tests := []struct {
		name, frame string
		ok          bool
	}{
		{"release", "0:0:0\n", true},
		{"full left and down", "255:255:510\n", true},
		{"full right and up", "-255:-255:-510\n", true},
		{"mixed", "-128:51:-77\n", true},
		{"no newline", "1:2:3", false},
		{"wrong sum", "1:2:4\n", false},
		{"over 255", "256:0:256\n", false},
		{"plus sign", "+1:2:3\n", false},
		{"space", " 1:2:3\n", false},
		{"four fields", "1:2:3:4\n", false},
		{"two fields", "1:2\n", false},
		{"letters", "a:b:c\n", false},
		{"huge", "99999999999999999999:0:0\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkRibot(tt.frame); (err == nil) != tt.ok {
				t.Errorf("checkRibot(%q) = %v, want ok %v", tt.frame, err, tt.ok)
			}
		})
	}
}
