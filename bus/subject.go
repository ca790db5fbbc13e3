package bus

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTokenLen is the longest node id or resource name accepted, in bytes.
const MaxTokenLen = 128

// Fixed subjects and wildcards of the tree.
const (
	SubjectNodeCheck    = "node.check"
	SubjectGatewayCheck = "gateway.check"
	SubjectAllNodes     = "node.>"
	// SubjectNodeEvents is every subject of every node, node.<id>.>:
	// node.> without node.check (the beacons, one per node every 30 s).
	SubjectNodeEvents = "node.*.>"
	SubjectAllSets    = "gateway.*.*.set"
	StateResource     = "$state"
)

// Discover requests carried on gateway.<node>.discover.
const (
	DiscoverResources = "resources"
	DiscoverValues    = "values"
)

// Errors returned by token validation; test with errors.Is.
var (
	ErrEmptyToken    = errors.New("empty")
	ErrTokenTooLong  = errors.New("too long")
	ErrUnsafeToken   = errors.New("unsafe character")
	ErrReservedToken = errors.New("reserved name")
	ErrNotASubject   = errors.New("not a goaiot subject")
)

// reserved holds names that may not be used as node ids or resource names.
var reserved = map[string]bool{"resources": true, "check": true, "discover": true, "set": true}

// validateToken checks that s is usable as exactly one subject token.
func validateToken(s string) error {
	switch {
	case s == "":
		return ErrEmptyToken
	case len(s) > MaxTokenLen:
		return fmt.Errorf("%w: %d bytes, max %d", ErrTokenTooLong, len(s), MaxTokenLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: not UTF-8", ErrUnsafeToken)
	}
	for _, r := range s {
		if r == '.' || r == '*' || r == '>' || r == '/' || r == '+' || r == '#' ||
			unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError ||
			unicode.Is(unicode.Cf, r) { // invisible and bidi formatting: U+200B, U+202E, U+FEFF…
			return fmt.Errorf("%w %q", ErrUnsafeToken, r)
		}
	}
	return nil
}

// ValidateNodeID reports why id cannot be a node id, or nil.
func ValidateNodeID(id string) error {
	if err := validateToken(id); err != nil {
		return fmt.Errorf("node id %q: %w", id, err)
	}
	if reserved[id] || strings.HasPrefix(id, "$") {
		return fmt.Errorf("node id %q: %w", id, ErrReservedToken)
	}
	return nil
}

// ValidateResource reports why name cannot be a resource name, or nil.
func ValidateResource(name string) error {
	if err := validateToken(name); err != nil {
		return fmt.Errorf("resource %q: %w", name, err)
	}
	if reserved[name] || strings.HasPrefix(name, "$") {
		return fmt.Errorf("resource %q: %w", name, ErrReservedToken)
	}
	return nil
}

// NodeResources is node.<id>.resources.
func NodeResources(id string) string { return "node." + id + ".resources" }

// NodeValue is node.<id>.<res>.
func NodeValue(id, res string) string { return "node." + id + "." + res }

// NodeState is node.<id>.$state.
func NodeState(id string) string { return "node." + id + "." + StateResource }

// NodeAll is node.<id>.>, every subject of one node.
func NodeAll(id string) string { return "node." + id + ".>" }

// GatewayDiscover is gateway.<id>.discover.
func GatewayDiscover(id string) string { return "gateway." + id + ".discover" }

// GatewaySet is gateway.<id>.<res>.set.
func GatewaySet(id, res string) string { return "gateway." + id + "." + res + ".set" }

// GatewaySetAll is gateway.<id>.*.set, every command to one node;
// GatewaySetAll("*") is every command on the bus.
func GatewaySetAll(id string) string { return "gateway." + id + ".*.set" }

// CommandNode returns the node token of gateway.<id>.<res>.set, valid or
// not (so that the node's owner can say why a command is bad), and false
// for a subject of any other shape. It allocates nothing: every gateway
// calls it on every command of the bus.
func CommandNode(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, "gateway.")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, ".set")
	if !ok {
		return "", false
	}
	node, res, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(res, ".") {
		return "", false
	}
	return node, true
}

// CommandResultSubject is aiot.commands.<id>.<res>.result, where the final
// outcome of a queued command is published (payload CommandResult).
func CommandResultSubject(id, res string) string {
	return "aiot.commands." + id + "." + res + ".result"
}

// SubjectAllCommandResults matches every CommandResultSubject.
const SubjectAllCommandResults = "aiot.commands.*.*.result"

// Kind tells which part of the tree a subject belongs to.
type Kind int

// The kinds of subject in the tree.
const (
	KindUnknown Kind = iota
	KindNodeCheck
	KindNodeResources
	KindNodeValue
	KindNodeState
	KindGatewayCheck
	KindGatewayDiscover
	KindGatewaySet
)

var kindNames = [...]string{"unknown", "node.check", "node.resources", "node.value", "node.state",
	"gateway.check", "gateway.discover", "gateway.set"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Subject is a parsed subject of the tree.
type Subject struct {
	Kind     Kind
	Node     string // empty for the check subjects
	Resource string // set for KindNodeValue and KindGatewaySet
}

// String builds the subject back.
func (s Subject) String() string {
	switch s.Kind {
	case KindNodeCheck:
		return SubjectNodeCheck
	case KindNodeResources:
		return NodeResources(s.Node)
	case KindNodeValue:
		return NodeValue(s.Node, s.Resource)
	case KindNodeState:
		return NodeState(s.Node)
	case KindGatewayCheck:
		return SubjectGatewayCheck
	case KindGatewayDiscover:
		return GatewayDiscover(s.Node)
	case KindGatewaySet:
		return GatewaySet(s.Node, s.Resource)
	}
	return ""
}

// ParseSubject parses a subject of the tree, validating its tokens.
func ParseSubject(subject string) (Subject, error) {
	t := strings.Split(subject, ".")
	s, err := parseTokens(t)
	if err != nil {
		return Subject{}, fmt.Errorf("subject %q: %w", subject, err)
	}
	return s, nil
}

func parseTokens(t []string) (Subject, error) {
	switch {
	case len(t) == 2 && t[0] == "node" && t[1] == "check":
		return Subject{Kind: KindNodeCheck}, nil
	case len(t) == 2 && t[0] == "gateway" && t[1] == "check":
		return Subject{Kind: KindGatewayCheck}, nil
	case len(t) == 3 && t[0] == "node":
		return parseNode3(t[1], t[2])
	case len(t) == 3 && t[0] == "gateway" && t[2] == "discover":
		return Subject{Kind: KindGatewayDiscover, Node: t[1]}, ValidateNodeID(t[1])
	case len(t) == 4 && t[0] == "gateway" && t[3] == "set":
		if err := ValidateNodeID(t[1]); err != nil {
			return Subject{}, err
		}
		return Subject{Kind: KindGatewaySet, Node: t[1], Resource: t[2]}, ValidateResource(t[2])
	}
	return Subject{}, ErrNotASubject
}

func parseNode3(id, last string) (Subject, error) {
	if err := ValidateNodeID(id); err != nil {
		return Subject{}, err
	}
	switch last {
	case "resources":
		return Subject{Kind: KindNodeResources, Node: id}, nil
	case StateResource:
		return Subject{Kind: KindNodeState, Node: id}, nil
	}
	if err := ValidateResource(last); err != nil {
		return Subject{}, err
	}
	return Subject{Kind: KindNodeValue, Node: id, Resource: last}, nil
}

// TopicToSubject maps an MQTT topic (or topic filter) to its NATS subject the
// way nats-server's MQTT listener does for the topics goaiot uses: "/" → ".",
// "+" → "*", "#" → ">". Topics that nats-server would have to escape (a ".",
// an empty level, white space) are rejected rather than remapped.
func TopicToSubject(topic string) (string, error) {
	if topic == "" {
		return "", fmt.Errorf("topic: %w", ErrEmptyToken)
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		switch {
		case l == "+":
			levels[i] = "*"
		case l == "#" && i == len(levels)-1:
			levels[i] = ">"
		case l == "":
			return "", fmt.Errorf("topic %q: level %d: %w", topic, i+1, ErrEmptyToken)
		default:
			if err := validateToken(l); err != nil {
				return "", fmt.Errorf("topic %q: level %d: %w", topic, i+1, err)
			}
		}
	}
	return strings.Join(levels, "."), nil
}

// SubjectToTopic maps a subject (or wildcard subject) back to its MQTT topic.
func SubjectToTopic(subject string) (string, error) {
	if subject == "" {
		return "", fmt.Errorf("subject: %w", ErrEmptyToken)
	}
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		switch {
		case t == "*":
			tokens[i] = "+"
		case t == ">" && i == len(tokens)-1:
			tokens[i] = "#"
		case t == "":
			return "", fmt.Errorf("subject %q: token %d: %w", subject, i+1, ErrEmptyToken)
		default:
			if err := validateToken(t); err != nil {
				return "", fmt.Errorf("subject %q: token %d: %w", subject, i+1, err)
			}
		}
	}
	return strings.Join(tokens, "/"), nil
}
