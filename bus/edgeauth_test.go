package bus

import (
	"slices"
	"testing"
)

func TestClientNodeIDs(t *testing.T) {
	tests := []struct {
		client string
		ids    []string
	}{
		{"n1", []string{"n1"}},
		{"mqtt-2", []string{"mqtt-2", "2"}},
		{"mqtt-", []string{"mqtt-"}},
		{"a.b", nil},
		{"mqtt-a.b", nil},
		{"$state", nil},
		{"mqtt-$state", []string{"mqtt-$state"}},
		{"check", nil},
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			if got := ClientNodeIDs(tt.client); !slices.Equal(got, tt.ids) {
				t.Fatalf("ClientNodeIDs(%q) = %q, want %q", tt.client, got, tt.ids)
			}
			for _, id := range tt.ids {
				if !SpeaksFor(tt.client, id) {
					t.Fatalf("SpeaksFor(%q, %q) = false", tt.client, id)
				}
			}
			if SpeaksFor(tt.client, "other") {
				t.Fatalf("%q speaks for other", tt.client)
			}
		})
	}
}

// nats-server describes an MQTT connection as `<addr> - mid:<n> - "<id>"`
// before it authenticates the CONNECT; edgeAuth reads the client id there.
func TestMQTTClientIDFromDescription(t *testing.T) {
	tests := []struct {
		desc, id string
		mqtt     bool
	}{
		{`127.0.0.1:5555 - mid:7 - "mqtt-n1"`, "mqtt-n1", true},
		{`[::1]:5555 - mid:7 - "a - \"b"`, `a - "b`, true},
		{`127.0.0.1:5555 - cid:7`, "", false},
		{`127.0.0.1:5555 - mid:7`, "", false},
		{`127.0.0.1:5555 - cid:7 - "x"`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			id, ok := mqttIDFromDescription(tt.desc)
			if id != tt.id || ok != tt.mqtt {
				t.Fatalf("got %q %v, want %q %v", id, ok, tt.id, tt.mqtt)
			}
		})
	}
}
