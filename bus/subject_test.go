package bus

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateNodeID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		want error
	}{
		{"riot uid", "AB582D8277D4D97", nil},
		{"mqtt id", "mqtt-2", nil},
		{"utf8", "capteur-été", nil},
		{"empty", "", ErrEmptyToken},
		{"dot", "a.b", ErrUnsafeToken},
		{"star", "a*", ErrUnsafeToken},
		{"gt", ">", ErrUnsafeToken},
		{"space", "a b", ErrUnsafeToken},
		{"tab", "a\tb", ErrUnsafeToken},
		{"slash", "a/b", ErrUnsafeToken},
		{"mqtt plus", "a+", ErrUnsafeToken},
		{"mqtt hash", "#", ErrUnsafeToken},
		{"control", "a\x00", ErrUnsafeToken},
		{"not utf8", "a\xff", ErrUnsafeToken},
		{"right-to-left override", "abc\u202edcba", ErrUnsafeToken},
		{"zero-width space", "a\u200bb", ErrUnsafeToken},
		{"byte order mark", "\ufeffnode", ErrUnsafeToken},
		{"line separator", "a\u2028b", ErrUnsafeToken},
		{"cyrillic letters", "датчик", nil},
		{"too long", strings.Repeat("x", MaxTokenLen+1), ErrTokenTooLong},
		{"longest", strings.Repeat("x", MaxTokenLen), nil},
		{"reserved check", "check", ErrReservedToken},
		{"reserved dollar", "$sys", ErrReservedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateNodeID(tt.id)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ValidateNodeID(%q) = %v, want %v", tt.id, err, tt.want)
			}
		})
	}
}

func TestValidateResource(t *testing.T) {
	tests := []struct {
		name, res string
		ok        bool
	}{
		{"temperature", "temperature", true},
		{"led", "led", true},
		{"resources reserved", "resources", false},
		{"set reserved", "set", false},
		{"discover reserved", "discover", false},
		{"state reserved", "$state", false},
		{"path", "sensors/temp", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateResource(tt.res); (err == nil) != tt.ok {
				t.Fatalf("ValidateResource(%q) = %v, want ok=%v", tt.res, err, tt.ok)
			}
		})
	}
}

func TestBuilders(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"resources", NodeResources("n1"), "node.n1.resources"},
		{"value", NodeValue("n1", "temperature"), "node.n1.temperature"},
		{"state", NodeState("n1"), "node.n1.$state"},
		{"all", NodeAll("n1"), "node.n1.>"},
		{"discover", GatewayDiscover("n1"), "gateway.n1.discover"},
		{"set", GatewaySet("n1", "led"), "gateway.n1.led.set"},
		{"set all", GatewaySetAll("n1"), "gateway.n1.*.set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestParseSubject(t *testing.T) {
	tests := []struct {
		subject string
		want    Subject
		wantErr bool
	}{
		{"node.check", Subject{Kind: KindNodeCheck}, false},
		{"gateway.check", Subject{Kind: KindGatewayCheck}, false},
		{"node.n1.resources", Subject{Kind: KindNodeResources, Node: "n1"}, false},
		{"node.n1.$state", Subject{Kind: KindNodeState, Node: "n1"}, false},
		{"node.n1.temperature", Subject{Kind: KindNodeValue, Node: "n1", Resource: "temperature"}, false},
		{"gateway.n1.discover", Subject{Kind: KindGatewayDiscover, Node: "n1"}, false},
		{"gateway.n1.led.set", Subject{Kind: KindGatewaySet, Node: "n1", Resource: "led"}, false},
		{"node.check.x", Subject{}, true},
		{"node.$x.temperature", Subject{}, true},
		{"node.n1.$other", Subject{}, true},
		{"node.n1.set", Subject{}, true},
		{"gateway.n1.resources.set", Subject{}, true},
		{"gateway.n1.led.get", Subject{}, true},
		{"node..temperature", Subject{}, true},
		{"node", Subject{}, true},
		{"", Subject{}, true},
		{"other.n1.x", Subject{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			got, err := ParseSubject(tt.subject)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSubject(%q) error = %v, wantErr %v", tt.subject, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseSubject(%q) = %+v, want %+v", tt.subject, got, tt.want)
			}
			if err == nil && got.String() != tt.subject {
				t.Fatalf("String() = %q, want %q", got.String(), tt.subject)
			}
		})
	}
}

func TestTopicMapping(t *testing.T) {
	tests := []struct {
		topic, subject string
	}{
		{"node/check", "node.check"},
		{"node/mqtt-2/temperature", "node.mqtt-2.temperature"},
		{"gateway/+/discover", "gateway.*.discover"},
		{"gateway/n1/+/set", "gateway.n1.*.set"},
		{"node/#", "node.>"},
		{"node/n1/$state", "node.n1.$state"},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			s, err := TopicToSubject(tt.topic)
			if err != nil || s != tt.subject {
				t.Fatalf("TopicToSubject(%q) = %q, %v; want %q", tt.topic, s, err, tt.subject)
			}
			back, err := SubjectToTopic(s)
			if err != nil || back != tt.topic {
				t.Fatalf("SubjectToTopic(%q) = %q, %v; want %q", s, back, err, tt.topic)
			}
		})
	}
}

func TestTopicMappingRejects(t *testing.T) {
	for _, topic := range []string{"", "/node/check", "node//check", "node/check/", "node/a.b/x", "node/a b/x", "node/#/x", "node/\xff"} {
		t.Run(topic, func(t *testing.T) {
			if s, err := TopicToSubject(topic); err == nil {
				t.Fatalf("TopicToSubject(%q) = %q, want an error", topic, s)
			}
		})
	}
	for _, subject := range []string{"", ".node", "node..x", "node.>.x", "node.a/b"} {
		t.Run("subject "+subject, func(t *testing.T) {
			if s, err := SubjectToTopic(subject); err == nil {
				t.Fatalf("SubjectToTopic(%q) = %q, want an error", subject, s)
			}
		})
	}
}

// FuzzParseSubject checks that whatever parses rebuilds to itself and that
// every token it accepts is a safe single token.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"node.check", "node.n1.temperature", "node.n1.$state", "gateway.n1.led.set",
		"gateway.n1.discover", "node.a.b.c", "node..x", "node.*.x", "gateway.>.set", "node.\xff.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		s, err := ParseSubject(subject)
		if err != nil {
			return
		}
		if s.String() != subject {
			t.Fatalf("ParseSubject(%q).String() = %q", subject, s.String())
		}
		if s.Node != "" && ValidateNodeID(s.Node) != nil {
			t.Fatalf("accepted unsafe node %q", s.Node)
		}
	})
}

// FuzzTopicToSubject checks that accepted topics round-trip and never
// produce an empty token.
func FuzzTopicToSubject(f *testing.F) {
	for _, s := range []string{"node/check", "node/n1/temperature", "gateway/+/set", "node/#", "a//b", "a.b", "a/#/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		subject, err := TopicToSubject(topic)
		if err != nil {
			return
		}
		if strings.Contains(subject, "..") || strings.HasPrefix(subject, ".") || strings.HasSuffix(subject, ".") {
			t.Fatalf("TopicToSubject(%q) = %q has an empty token", topic, subject)
		}
		back, err := SubjectToTopic(subject)
		if err != nil || back != topic {
			t.Fatalf("round trip %q -> %q -> %q, %v", topic, subject, back, err)
		}
	})
}

func TestCommandNode(t *testing.T) {
	tests := []struct {
		name, subject, node string
		ok                  bool
	}{
		{"command", "gateway.n1.led.set", "n1", true},
		{"reserved resource: the owner says why", "gateway.n1.resources.set", "n1", true},
		{"unsafe node token", "gateway.$x.led.set", "$x", true},
		{"discover", "gateway.n1.discover", "", false},
		{"too many tokens", "gateway.n1.a.b.set", "", false},
		{"too few tokens", "gateway.n1.set", "", false},
		{"not a set", "gateway.n1.led.get", "", false},
		{"node subject", "node.n1.led", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node, ok := CommandNode(tt.subject)
			if node != tt.node || ok != tt.ok {
				t.Fatalf("CommandNode(%q) = %q, %v; want %q, %v", tt.subject, node, ok, tt.node, tt.ok)
			}
		})
	}
}
