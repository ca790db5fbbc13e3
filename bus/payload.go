package bus

import (
	"encoding/json"
	"errors"
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

// ParseCheck decodes a node.check payload, validating the id. The form
// gateways and RIOT nodes send, {"id":"<id>"} with a plain ASCII id, is
// read without encoding/json (every tracker reads every beacon); any other
// goes through it.
func ParseCheck(data []byte) (Check, error) {
	c, ok := plainCheck(data)
	if !ok {
		var err error
		if c, err = parseCheckJSON(data); err != nil {
			return Check{}, err
		}
	}
	if err := ValidateNodeID(c.ID); err != nil {
		return Check{}, fmt.Errorf("check payload: %w", err)
	}
	return c, nil
}

// AppendCheck appends the node.check payload of id to b: the plain form
// (see ParseCheck) when id needs no escaping, else encoding/json's.
func AppendCheck(b []byte, id string) ([]byte, error) {
	for i := range len(id) {
		if c := id[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, err := json.Marshal(Check{ID: id})
			if err != nil {
				return b, fmt.Errorf("check payload: %w", err)
			}
			return append(b, j...), nil
		}
	}
	b = append(b, `{"id":"`...)
	b = append(b, id...)
	return append(b, `"}`...), nil
}

func parseCheckJSON(data []byte) (Check, error) {
	var c Check
	if err := json.Unmarshal(data, &c); err != nil {
		return Check{}, fmt.Errorf("check payload: %w", err)
	}
	return c, nil
}

// plainCheck reads {"id":"<id>"} whose id is printable ASCII without quote
// or backslash (what encoding/json reads the same); false for anything
// else.
func plainCheck(data []byte) (Check, bool) {
	const head, tail = `{"id":"`, `"}`
	if len(data) < len(head)+len(tail) || string(data[:len(head)]) != head || string(data[len(data)-len(tail):]) != tail {
		return Check{}, false
	}
	id := data[len(head) : len(data)-len(tail)]
	for _, b := range id {
		if b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return Check{}, false
		}
	}
	return Check{ID: string(id)}, true
}

// Reply is the answer of a gateway to a gateway.<node>.<res>.set request.
// The queue (gateways/queue) answers a request with HeaderQueueFor for an
// offline node with OK, Code CodeQueued, the command's id and its
// deadline; its final outcome follows on [CommandResultSubject]. A refusal
// of the queue carries Code CodeQueueFull or CodeBadRequest. Code is one of
// the Code* constants; callers switch on it, never on Error.
type Reply struct {
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
	Code    string    `json:"code,omitempty"`
	Command string    `json:"command,omitempty"`
	Until   time.Time `json:"until,omitzero"`
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

// HeaderQueueFor, on a gateway.<node>.<res>.set request, asks that the
// command wait for the node when it is offline: a Go duration ("90s",
// "10m", "24h"), the longest the command may wait. While the node is
// online the header changes nothing. See package gateways/queue.
const HeaderQueueFor = "Aiot-Queue-For"

// Reply codes: what a command reply or result means, to switch on (Error
// is for people). Every reply of a gateway's tracker carries one
// (gateways/presence says when each is given); the dashboard passes them on
// to browsers and adds its own (CodeNoGateway, CodeForbidden, CodeTimeout
// when no reply came). Codes are snake_case.
const (
	// CodeOK: the node confirmed the command (Reply).
	CodeOK = "ok"
	// CodeTimeout: the node did not confirm the command within the command
	// timeout, or no gateway answered in time (Reply).
	CodeTimeout = "timeout"
	// CodeRefused: the node, or its gateway, said no: a CoAP error
	// response, another value reported instead of the commanded one, a
	// node that disconnected (Reply).
	CodeRefused = "refused"
	// CodeNoGateway: no gateway serves the node: the queue answers it for
	// an id it never saw (gateways/queue), a gateway for a node it let go,
	// the dashboard when nobody answered for a node not online (Reply).
	CodeNoGateway = "no_gateway"
	// CodeForbidden: the sender may not send commands (Reply, dashboard).
	CodeForbidden = "forbidden"
	// CodeBusy: too many commands are waiting for the node or the gateway;
	// try again later (Reply).
	CodeBusy = "busy"
	// CodeError: the bus failed otherwise, or the reply was not a Reply
	// (the dashboard's own).
	CodeError = "error"
	// CodeQueued: the node is offline, the command waits for it (Reply).
	CodeQueued = "queued"
	// CodeOffline: refused, the node is offline and the request did not
	// ask to be queued (Reply).
	CodeOffline = "offline"
	// CodeQueueFull: refused, the queue is at one of its caps (Reply).
	CodeQueueFull = "queue_full"
	// CodeBadRequest: refused, a bad Aiot-Queue-For or payload (Reply).
	CodeBadRequest = "bad_request"
	// CodeDelivered: the node's gateway accepted the command (result).
	CodeDelivered = "delivered"
	// CodeFailed: the node's gateway refused it or did not answer (result).
	CodeFailed = "failed"
	// CodeExpired: the node did not come back before the deadline (result).
	CodeExpired = "expired"
	// CodeReplaced: a newer command for the same resource took its place
	// before it was delivered (result).
	CodeReplaced = "replaced"
)

// CommandResult is the payload of aiot.commands.<node>.<res>.result
// ([CommandResultSubject]): the final outcome of a queued command. It
// names the command, never carries its payload (viewers read it).
type CommandResult struct {
	Command  string    `json:"command"` // the id the "queued" Reply gave
	Node     string    `json:"uid"`
	Resource string    `json:"endpoint"`
	OK       bool      `json:"ok"`
	Code     string    `json:"code"` // CodeDelivered, CodeFailed, CodeExpired, CodeReplaced
	Error    string    `json:"error,omitempty"`
	QueuedAt time.Time `json:"queued_at"`
	Until    time.Time `json:"until"`
	Time     time.Time `json:"ts"`
}

// ParseCommandResult decodes and checks a CommandResult.
func ParseCommandResult(data []byte) (CommandResult, error) {
	var r CommandResult
	if err := json.Unmarshal(data, &r); err != nil {
		return CommandResult{}, fmt.Errorf("command result: %w", err)
	}
	if err := ValidateNodeID(r.Node); err != nil {
		return CommandResult{}, fmt.Errorf("command result: %w", err)
	}
	if err := ValidateResource(r.Resource); err != nil {
		return CommandResult{}, fmt.Errorf("command result: %w", err)
	}
	switch {
	case r.Code != CodeDelivered && r.Code != CodeFailed && r.Code != CodeExpired && r.Code != CodeReplaced:
		return CommandResult{}, fmt.Errorf("command result: unknown code %q", r.Code)
	case r.Command == "" || len(r.Command) > 64:
		return CommandResult{}, errors.New("command result: command id empty or over 64 bytes")
	case len(r.Error) > 1024:
		return CommandResult{}, errors.New("command result: error over 1024 bytes")
	}
	return r, nil
}
