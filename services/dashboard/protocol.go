package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Message types of the browser protocol (see the package documentation).
const (
	typeNew     = "new"
	typeUpdate  = "update"
	typeOut     = "out"
	typeReset   = "reset"
	typeSynced  = "synced"
	typeHistory = "history"
	typeResult  = "result"
	typeHello   = "hello"
	typeOutcome = "outcome"
)

// Limits on what a browser may ask for.
const (
	maxIDLen            = 64                 // the optional "id" of a command
	maxQueueFor         = 366 * 24 * 60 * 60 // seconds; the queue refuses past its own limit
	defaultHistoryLimit = 100                // points in a history answer when the browser gives no limit
)

// badFrame is why a browser frame is refused; the socket closes with 1003
// and this reason.
type badFrame struct{ reason string }

func (e *badFrame) Error() string { return e.reason }

func refuse(format string, args ...any) error {
	return &badFrame{reason: closeReason(fmt.Sprintf(format, args...))}
}

// maxCloseReason is the most a close frame's reason may hold (RFC 6455
// §5.5: 125 bytes of payload, 2 of them the code).
const maxCloseReason = 123

// closeReason cuts s to fit a close frame, on a rune boundary so that it
// stays valid UTF-8 (a browser fails a connection whose close reason is
// not). A longer reason would make the close frame itself fail to send.
func closeReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	n := maxCloseReason
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// inbound is one browser frame, before its data is decoded by type.
type inbound struct {
	Type *string         `json:"type"`
	Data json.RawMessage `json:"data"`
	ID   *string         `json:"id"`
}

// request is a decoded browser frame.
type request struct {
	kind     string // typeNew, typeUpdate (a command) or typeHistory
	id       string
	uid      string
	endpoint string
	payload  []byte
	limit    int
	queueFor time.Duration // ext: wait this long for an offline node
}

// decodeRequest parses one text frame from a browser. Any error it returns
// is a *badFrame.
func decodeRequest(frame []byte, maxHistory int) (request, error) {
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return request{}, refuse("not a JSON object")
	}
	var in inbound
	if err := json.Unmarshal(trimmed, &in); err != nil {
		return request{}, refuse("bad JSON: %s", jsonReason(err))
	}
	if in.Type == nil {
		return request{}, refuse("missing field \"type\"")
	}
	req := request{kind: *in.Type}
	if in.ID != nil {
		if len(*in.ID) > maxIDLen {
			return request{}, refuse("\"id\" longer than %d bytes", maxIDLen)
		}
		req.id = *in.ID
	}
	switch req.kind {
	case typeNew:
		return req, nil
	case typeUpdate:
		return decodeCommand(req, in.Data)
	case typeHistory:
		return decodeHistory(req, in.Data, maxHistory)
	}
	return request{}, refuse("unknown type %.32q", req.kind)
}

// target is the node and resource a command or history request is about.
type target struct {
	UID      *string `json:"uid"`
	Endpoint *string `json:"endpoint"`
}

func (t target) check() (uid, endpoint string, err error) {
	switch {
	case t.UID == nil:
		return "", "", refuse("missing field \"data.uid\"")
	case t.Endpoint == nil:
		return "", "", refuse("missing field \"data.endpoint\"")
	}
	// Pyaiot's page strips a leading '/' from endpoints; accept both forms.
	return *t.UID, strings.TrimPrefix(*t.Endpoint, "/"), nil
}

func decodeCommand(req request, data json.RawMessage) (request, error) {
	if len(data) == 0 || data[0] != '{' {
		return request{}, refuse("missing object \"data\"")
	}
	var d struct {
		target
		Payload  json.RawMessage `json:"payload"`
		QueueFor *int64          `json:"queue_for"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return request{}, refuse("bad \"data\": %s", jsonReason(err))
	}
	var err error
	if req.uid, req.endpoint, err = d.check(); err != nil {
		return request{}, err
	}
	if d.QueueFor != nil {
		if *d.QueueFor <= 0 || *d.QueueFor > maxQueueFor {
			return request{}, refuse("\"data.queue_for\": want seconds, 1 to %d", maxQueueFor)
		}
		req.queueFor = time.Duration(*d.QueueFor) * time.Second
	}
	if req.payload, err = payloadText(d.Payload); err != nil {
		return request{}, err
	}
	return req, nil
}

// payloadText is a command payload as sent to the gateway: a JSON string's
// contents, or the JSON text of a number or boolean.
func payloadText(raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return nil, refuse("missing field \"data.payload\"")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, refuse("bad \"data.payload\"")
		}
		return []byte(s), nil
	case '{', '[', 'n':
		return nil, refuse("\"data.payload\" must be a string")
	}
	return []byte(raw), nil
}

func decodeHistory(req request, data json.RawMessage, maxHistory int) (request, error) {
	if len(data) == 0 || data[0] != '{' {
		return request{}, refuse("missing object \"data\"")
	}
	var d struct {
		target
		Limit *int `json:"limit"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return request{}, refuse("bad \"data\": %s", jsonReason(err))
	}
	var err error
	if req.uid, req.endpoint, err = d.check(); err != nil {
		return request{}, err
	}
	req.limit = defaultHistoryLimit
	if d.Limit != nil {
		req.limit = *d.Limit
	}
	req.limit = min(max(req.limit, 1), maxHistory)
	return req, nil
}

// jsonReason shortens a JSON error for a close reason (at most 123 bytes).
func jsonReason(err error) string {
	s := strings.TrimPrefix(err.Error(), "json: ")
	if len(s) > 80 {
		n := 80
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

// Server to browser messages.

type newMsg struct {
	Type     string `json:"type"`
	UID      string `json:"uid"`
	Site     string `json:"site,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Address  string `json:"address,omitempty"`
	State    string `json:"state"`
	TS       int64  `json:"ts,omitempty"`
}

type updateMsg struct {
	Type     string `json:"type"`
	UID      string `json:"uid"`
	Endpoint string `json:"endpoint"`
	Data     string `json:"data"`
	TS       int64  `json:"ts,omitempty"`
}

// nodeEventMsg is "out" and "reset".
type nodeEventMsg struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
	TS   int64  `json:"ts,omitempty"`
}

type syncedMsg struct {
	Type  string `json:"type"`
	Nodes int    `json:"nodes"`
}

type point struct {
	TS   int64  `json:"ts"`
	Data string `json:"data"`
}

type historyMsg struct {
	Type     string  `json:"type"`
	ID       string  `json:"id,omitempty"`
	UID      string  `json:"uid"`
	Endpoint string  `json:"endpoint"`
	Points   []point `json:"points"`
	Error    string  `json:"error,omitempty"`
}

type resultMsg struct {
	Type     string `json:"type"`
	ID       string `json:"id,omitempty"`
	UID      string `json:"uid"`
	Endpoint string `json:"endpoint"`
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	// Code says what happened, to switch on (bus.Code*: ok, timeout,
	// refused, no_gateway, forbidden, busy, bad_request, queued, …). A
	// command that waits for its node: Code "queued", the queue's command
	// id and the deadline (ms); its "outcome" follows.
	Code    string `json:"code,omitempty"`
	Command string `json:"command,omitempty"`
	Until   int64  `json:"until,omitempty"`
}

// outcomeMsg is the final outcome of a queued command (bus.CommandResult),
// sent to every goaiot page.
type outcomeMsg struct {
	Type     string `json:"type"`
	Command  string `json:"command"`
	UID      string `json:"uid"`
	Endpoint string `json:"endpoint"`
	OK       bool   `json:"ok"`
	Code     string `json:"code"`
	Error    string `json:"error,omitempty"`
	TS       int64  `json:"ts"`
}

type helloMsg struct {
	Type    string `json:"type"`
	Server  string `json:"server"`
	Version string `json:"version"`
	Role    string `json:"role"`
	User    string `json:"user,omitempty"`
	Login   bool   `json:"login"`
	// Batch: frames after this one may hold several messages, one a line
	// (the browser asked for it with batch=1).
	Batch bool `json:"batch,omitempty"`
}

// millis is t in milliseconds since the Unix epoch, 0 for the zero time.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
