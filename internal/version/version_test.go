package version

import (
	"testing"

	"github.com/nats-io/nats.go/micro"

	"github.com/goaiot/goaiot/bus/bustest"
)

// The default version is one micro accepts; a version that is not
// semantic is refused (what a bad -ldflags -X would do).
func TestVersionIsSemantic(t *testing.T) {
	nc := bustest.Connect(t, bustest.StartServer(t))
	tests := []struct {
		name, version string
		ok            bool
	}{
		{"default", Version, true},
		{"not semantic", "dev", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := micro.AddService(nc, micro.Config{Name: "version-test", Version: tt.version})
			if err == nil {
				_ = svc.Stop()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("version %q: %v, want ok=%v", tt.version, err, tt.ok)
			}
		})
	}
}
