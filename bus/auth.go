package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Role is what a bus user may do. Permissions are enforced by nats-server.
type Role string

// The roles of the bus.
const (
	// RoleAdmin may do anything (stream management, ops).
	RoleAdmin Role = "admin"
	// RoleGateway publishes node.> and serves gateway.>; it keeps its node
	// table in the NODE_TABLES bucket (NodeTablesRights), reads the NODES
	// stream and keeps the queue's bucket (QueueBucket), for the queue of
	// commands waiting for offline nodes.
	RoleGateway Role = "gateway"
	// RoleDashboard reads node.> and the NODES stream and may only request
	// gateway.*.*.set.
	RoleDashboard Role = "dashboard"
	// RoleViewer reads node.> and the NODES stream, nothing else.
	RoleViewer Role = "viewer"
	// RoleNode is an MQTT node: publishes node.>, receives gateway.>.
	RoleNode Role = "node"
)

// Roles lists every role, for key generation.
func Roles() []Role {
	return []Role{RoleAdmin, RoleGateway, RoleDashboard, RoleViewer, RoleNode}
}

// streamRead are the JetStream API subjects needed to read NODES: stream
// info, direct gets, and consumers a reader makes for itself (ordered
// consumers, `nats stream view`'s pager): create by name or the legacy
// ephemeral endpoint, info, next, delete, flow control and acks.
//
// Left out on purpose: the legacy durable endpoint
// ($JS.API.CONSUMER.DURABLE.CREATE.>, refused by permission), consumer
// lists and names (a reader cannot find, hence not delete, another's
// consumer: names are random), pause, unpin, reset and leader step-down.
// What a subject cannot show (a create's payload: durable name,
// deliver_subject) is bounded by the stream (NodesStreamConfig: at most
// MaxNodesConsumers, each gone after NodesConsumerIdle unused) and made
// harmless by the receivers (commands delivered by JetStream are ignored:
// IsJetStreamDelivery).
var streamRead = []string{
	"$JS.API.INFO",
	"$JS.API.STREAM.INFO." + NodesStream,
	"$JS.API.STREAM.MSG.GET." + NodesStream,
	"$JS.API.DIRECT.GET." + NodesStream, "$JS.API.DIRECT.GET." + NodesStream + ".>",
	"$JS.API.CONSUMER.CREATE." + NodesStream, "$JS.API.CONSUMER.CREATE." + NodesStream + ".>",
	"$JS.API.CONSUMER.INFO." + NodesStream + ".*",
	"$JS.API.CONSUMER.DELETE." + NodesStream + ".*",
	"$JS.API.CONSUMER.MSG.NEXT." + NodesStream + ".*",
	"$JS.FC." + NodesStream + ".>", "$JS.ACK." + NodesStream + ".>",
}

// QueueBucket is the JetStream key-value bucket where queued commands wait
// for their node (gateways/queue); its stream is "KV_" + QueueBucket.
const QueueBucket = "AIOT_QUEUE"

// queueStore are the subjects the queue needs to keep its bucket: create
// it, read, write and watch it, and nothing of any other stream.
var queueStore = func() []string {
	const st = "KV_" + QueueBucket
	return []string{
		"$KV." + QueueBucket + ".>",
		"$JS.API.STREAM.INFO." + st, "$JS.API.STREAM.CREATE." + st, "$JS.API.STREAM.UPDATE." + st,
		"$JS.API.STREAM.MSG.GET." + st, "$JS.API.DIRECT.GET." + st, "$JS.API.DIRECT.GET." + st + ".>",
		"$JS.API.CONSUMER.CREATE." + st, "$JS.API.CONSUMER.CREATE." + st + ".>",
		"$JS.API.CONSUMER.INFO." + st + ".*", "$JS.API.CONSUMER.DELETE." + st + ".*",
		"$JS.FC." + st + ".>", "$JS.ACK." + st + ".>",
	}
}()

// discovery are the subjects of NATS micro services and of goaiot's own
// service endpoints.
var discovery = []string{"$SRV.>", "aiot.>"}

// InboxPrefix is the reply-subject prefix of a role's connections
// (nats.CustomInboxPrefix; Identity.Option sets it): a role subscribes only
// to its own inboxes, so it neither reads another role's replies nor, not
// being allowed to publish there, forges them. The admin keeps nats's
// default _INBOX.
func InboxPrefix(r Role) string {
	if r == RoleAdmin {
		return strings.TrimSuffix(nats.InboxPrefix, ".")
	}
	return "_INBOX_" + string(r)
}

// Inboxes are the subjects of every role's inboxes, for links that carry
// replies (a hub's leaf users).
func Inboxes() []string {
	var out []string
	for _, r := range Roles() {
		if r != RoleNode {
			out = append(out, InboxPrefix(r)+".>")
		}
	}
	return out
}

// replies lets a connection answer the requests it receives (one answer
// each, within two minutes) without the right to publish into any inbox.
var replies = &server.ResponsePermission{MaxMsgs: 1, Expires: 2 * time.Minute}

// RolePermissions returns the subject permissions of a role. Every role
// but the admin subscribes only to its own inboxes (InboxPrefix) and
// publishes into none: answers go out through response permissions.
func RolePermissions(r Role) (*server.Permissions, error) {
	allow := func(pub, sub []string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: sub},
			Response:  replies,
		}
	}
	inbox := []string{InboxPrefix(r) + ".>"}
	switch r {
	case RoleAdmin:
		return nil, nil // no restriction
	case RoleGateway:
		subjects := concat([]string{"node.>", "gateway.>"}, discovery)
		return allow(concat(subjects, streamRead, queueStore, NodeTablesRights()), concat(subjects, inbox)), nil
	case RoleDashboard:
		return allow(concat([]string{SubjectAllSets}, streamRead, discovery),
			concat([]string{SubjectAllNodes}, discovery, inbox)), nil
	case RoleViewer:
		return allow(concat(streamRead, []string{"$SRV.>"}),
			concat([]string{SubjectAllNodes}, discovery, inbox)), nil
	case RoleNode:
		return allow([]string{SubjectAllNodes}, []string{"gateway.>"}), nil
	}
	return nil, fmt.Errorf("unknown role %q", r)
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// AuthUser is one bus user: an nkey (public key) or a name with a bcrypt
// password hash, and its role.
type AuthUser struct {
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	Nkey     string `json:"nkey,omitempty"`
	Password string `json:"password_bcrypt,omitempty"`
}

// Auth is the bus's user list, as written by `aiot keys` to auth.json.
type Auth struct {
	Users []AuthUser `json:"users"`
	// MQTTAnonymous lets MQTT clients without credentials in as RoleNode
	// (most MQTT devices have none); otherwise they must log in.
	MQTTAnonymous bool `json:"mqtt_anonymous"`
}

// LoadAuth reads an auth.json file and validates it.
func LoadAuth(path string) (*Auth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var a Auth
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("auth %s: %w", path, err)
	}
	for i, u := range a.Users {
		if err := u.validate(); err != nil {
			return nil, fmt.Errorf("auth %s: user %d: %w", path, i+1, err)
		}
	}
	return &a, nil
}

func (u AuthUser) validate() error {
	if _, err := RolePermissions(u.Role); err != nil {
		return err
	}
	switch {
	case u.Nkey != "" && u.Password != "":
		return errors.New("both nkey and password")
	case u.Nkey != "":
		if !nkeys.IsValidPublicUserKey(u.Nkey) {
			return fmt.Errorf("nkey %q: not a public user key", u.Nkey)
		}
	case u.Password != "":
		if u.Name == "" || !strings.HasPrefix(u.Password, "$2") {
			return errors.New("password users need a name and a bcrypt hash")
		}
	default:
		return errors.New("neither nkey nor password")
	}
	return nil
}

// Identity is a bus user's private key, for connecting.
type Identity struct {
	Role Role
	kp   nkeys.KeyPair
}

// NewIdentity creates a fresh key pair for role: the embedded server's own
// parts use one each, never written anywhere.
func NewIdentity(role Role) (*Identity, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("nkey: %w", err)
	}
	return &Identity{Role: role, kp: kp}, nil
}

// LoadIdentity reads a seed file written by `aiot keys`.
func LoadIdentity(path string, role Role) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nkey: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("nkey %s: %w", path, err)
	}
	return &Identity{Role: role, kp: kp}, nil
}

// User is the identity's entry for an Auth user list.
func (id *Identity) User(name string) AuthUser {
	pub, _ := id.kp.PublicKey() // a created or parsed user key has one
	return AuthUser{Name: name, Role: id.Role, Nkey: pub}
}

// Option makes a nats connection sign in with this identity and take its
// role's inbox prefix (InboxPrefix), the only inboxes the role may read.
func (id *Identity) Option() nats.Option {
	pub, _ := id.kp.PublicKey()
	nkey := nats.Nkey(pub, id.kp.Sign)
	inbox := nats.CustomInboxPrefix(InboxPrefix(id.Role))
	return func(o *nats.Options) error {
		if err := nkey(o); err != nil {
			return err
		}
		return inbox(o)
	}
}

// GenerateKeys writes one seed file per role (<dir>/<role>.nk, mode 0600)
// and <dir>/auth.json listing their public keys, for `aiot keys`. Existing
// files are not overwritten.
func GenerateKeys(dir string, mqttAnonymous bool) (*Auth, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	authPath := filepath.Join(dir, "auth.json")
	if _, err := os.Stat(authPath); err == nil {
		return nil, fmt.Errorf("keys: %s exists; remove it to generate new keys", authPath)
	}
	a := &Auth{MQTTAnonymous: mqttAnonymous}
	for _, role := range Roles() {
		if role == RoleNode {
			continue // MQTT nodes log in by name and password or anonymously
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		path := filepath.Join(dir, string(role)+".nk")
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		a.Users = append(a.Users, AuthUser{Name: string(role), Role: role, Nkey: pub})
	}
	b, _ := json.MarshalIndent(a, "", "  ") // Auth always marshals
	if err := os.WriteFile(authPath, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return a, nil
}
