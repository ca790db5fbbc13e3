package ws

import (
	"encoding/json"
	"net"
	"net/netip"
	"sync/atomic"
)

// reason is why the gateway refused a handshake or skipped a value; it is
// the label of Stats.Refusals.
type reason int

const (
	refusedOrigin        reason = iota // 403: a browser page of a foreign origin
	refusedBadID                       // 400: ?id= is not a node id
	refusedToken                       // 401: a token-listed id without its token
	refusedNewIDRate                   // 429: too many new ids from one source address
	refusedIDInUse                     // 1008: the id's older connection still answers
	refusedValueTooLarge               // value skipped: above MaxValueBytes
	refusedValueRate                   // value skipped: above ValueRate
	refusedResources                   // value skipped: a new resource past MaxResources
	refusedBadResource                 // value skipped: resource name not a subject token
	numReasons
)

// reasonNames are the Stats.Refusals keys, by reason.
var reasonNames = [numReasons]string{
	refusedOrigin: "origin", refusedBadID: "bad_id", refusedToken: "token",
	refusedNewIDRate: "new_ids_rate", refusedIDInUse: "id_in_use",
	refusedValueTooLarge: "value_too_large", refusedValueRate: "value_rate",
	refusedResources: "too_many_resources", refusedBadResource: "bad_resource",
}

// refusals counts refusals by reason.
type refusals [numReasons]atomic.Int64

// snapshot returns every reason's count, zeros included, so that the keys
// of `nats micro stats aiot-ws` are stable.
func (r *refusals) snapshot() map[string]int64 {
	m := make(map[string]int64, numReasons)
	for i := range r {
		m[reasonNames[i]] = r[i].Load()
	}
	return m
}

// sourceAddr is the IP address of r's peer (RemoteAddr: proxy headers are
// not trusted); the zero Addr when it cannot be parsed, which then shares
// one bucket.
func sourceAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// valueEnvelope is the most a value's bus payload adds around the JSON
// string of its text: {"value":…,"ts":"2006-01-02T15:04:05.999999999Z"}.
const valueEnvelope = len(`{"value":,"ts":"2006-01-02T15:04:05.999999999Z"}`)

// fitsOnBus reports whether value, once wrapped by bus.StringValue, takes
// at most max bytes on the bus. Escaping makes a byte at most six (\u00XX),
// so short values need no marshalling; longer ones are measured.
func fitsOnBus(value string, max int) bool {
	if 6*len(value)+2+valueEnvelope <= max {
		return true
	}
	b, err := json.Marshal(value)
	return err == nil && len(b)+valueEnvelope <= max
}
