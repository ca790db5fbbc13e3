package bus

import (
	"encoding/json"
	"fmt"
	"time"
)

// Presence states carried in [State].
const (
	StateOnline  = "online"
	StateOffline = "offline"
	StateReset   = "reset"
)

// Protocol names carried in [State], as Pyaiot's dashboard shows them.
const (
	ProtocolCoAP      = "CoAP"
	ProtocolMQTT      = "MQTT"
	ProtocolMQTTSN    = "MQTT-SN"
	ProtocolWebSocket = "WebSocket"
)

// Check is the payload of node.check.
type Check struct {
	ID string `json:"id"`
}

// Value is the payload of node.<node>.<res>. Value holds the node's value as
// JSON: a string exactly as the node sent it ("21.5°C"), or any JSON value.
type Value struct {
	Value json.RawMessage `json:"value"`
	Time  time.Time       `json:"ts,omitzero"`
}

// StringValue makes a Value holding s as a JSON string, stamped with t.
func StringValue(s string, t time.Time) Value {
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return Value{Value: b, Time: t}
}

// Text is the value as a string: the string itself for a JSON string, the
// JSON text otherwise (so a position object becomes `{"lat":…}`).
func (v Value) Text() string {
	var s string
	if err := json.Unmarshal(v.Value, &s); err == nil {
		return s
	}
	return string(v.Value)
}

// ParseValue decodes a node.<node>.<res> payload.
func ParseValue(data []byte) (Value, error) {
	var v Value
	if err := json.Unmarshal(data, &v); err != nil {
		return Value{}, fmt.Errorf("value payload: %w", err)
	}
	if len(v.Value) == 0 {
		return Value{}, fmt.Errorf("value payload: no \"value\" field")
	}
	return v, nil
}

// State is the payload of node.<node>.$state.
type State struct {
	State    string    `json:"state"`
	Protocol string    `json:"protocol,omitempty"`
	Gateway  string    `json:"gateway,omitempty"`
	Site     string    `json:"site,omitempty"`
	Address  string    `json:"address,omitempty"`
	Time     time.Time `json:"ts,omitzero"`
}

// ParseState decodes a node.<node>.$state payload.
func ParseState(data []byte) (State, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("state payload: %w", err)
	}
	switch s.State {
	case StateOnline, StateOffline, StateReset:
		return s, nil
	}
	return State{}, fmt.Errorf("state payload: unknown state %q", s.State)
}

// ParseResources decodes a node.<node>.resources payload, validating names.
func ParseResources(data []byte) ([]string, error) {
	var names []string
	if err := json.Unmarshal(data, &names); err != nil {
		return nil, fmt.Errorf("resources payload: %w", err)
	}
	for _, n := range names {
		if err := ValidateResource(n); err != nil {
			return nil, fmt.Errorf("resources payload: %w", err)
		}
	}
	return names, nil
}

// ParseCheck decodes a node.check payload, validating the id.
func ParseCheck(data []byte) (Check, error) {
	var c Check
	if err := json.Unmarshal(data, &c); err != nil {
		return Check{}, fmt.Errorf("check payload: %w", err)
	}
	if err := ValidateNodeID(c.ID); err != nil {
		return Check{}, fmt.Errorf("check payload: %w", err)
	}
	return c, nil
}

// Reply is the answer of a gateway to a gateway.<node>.<res>.set request.
type Reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// ParseReply decodes a command reply.
func ParseReply(data []byte) (Reply, error) {
	var r Reply
	if err := json.Unmarshal(data, &r); err != nil {
		return Reply{}, fmt.Errorf("command reply: %w", err)
	}
	return r, nil
}

// Headers goaiot sets on messages it relays.
const (
	// HeaderOwner marks a node.check published by the gateway that owns the
	// node itself (CoAP, websocket): MQTT node logic leaves such nodes alone.
	HeaderOwner = "Aiot-Owner"
	// HeaderTransport names the transport that carried a node's message onto
	// the bus when it is not plain MQTT (e.g. "MQTT-SN").
	HeaderTransport = "Aiot-Transport"
	// HeaderAddress is the network address of the node that sent a message.
	HeaderAddress = "Aiot-Address"
)

// SubjectClaimRefused carries a report each time a gateway refuses to claim
// an id another gateway owns (payload ClaimRefused): the dashboard shows
// them, `nats sub aiot.claims.refused` follows them.
const SubjectClaimRefused = "aiot.claims.refused"

// ClaimRefused is the payload of SubjectClaimRefused.
type ClaimRefused struct {
	UID      string    `json:"uid"`
	Owner    string    `json:"owner"`    // protocol/gateway that owns it
	Claimant string    `json:"claimant"` // protocol/gateway that was refused
	Address  string    `json:"address,omitempty"`
	Time     time.Time `json:"ts"`
}
