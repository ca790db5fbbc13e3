package bus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnectConfig says how a component reaches the bus: in process through
// Server when it runs in the same process, otherwise by URL.
type ConnectConfig struct {
	// Name identifies the connection in `nats server report connections`.
	Name string
	// Server, when set, is connected to in process (no socket).
	Server *Server
	// URL of an external NATS (nats://, tls://, ws://), used when Server is nil.
	URL string
	// Credentials is an optional .creds file; User/Password optional login.
	Credentials    string
	User, Password string
	// Identity signs in with an nkey (see Auth).
	Identity *Identity
	// TLS for the connection by URL.
	TLS *tls.Config
	// Logger receives connection events. Required.
	Logger *slog.Logger
	// NoEcho: the server never sends this connection what it published
	// itself (nats.NoEcho). For a connection none of whose subscribers
	// needs its own messages: the CoAP gateway's tracker would get back
	// each node.check it publishes, one per beacon, only to skip it.
	NoEcho bool
}

// Connect connects to the bus. Connections by URL retry forever, during the
// first connection too, and buffer publishes while disconnected.
func Connect(cfg ConnectConfig) (*nats.Conn, error) {
	if cfg.Logger == nil {
		return nil, errors.New("bus: connect: no logger")
	}
	log := cfg.Logger.With("conn", cfg.Name)
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.PingInterval(20 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats async error", "subject", sub.Subject, "err", err)
				return
			}
			log.Error("nats async error", "err", err)
		}),
	}
	if cfg.Credentials != "" {
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	}
	if cfg.Identity != nil {
		opts = append(opts, cfg.Identity.Option())
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.NoEcho {
		opts = append(opts, nats.NoEcho())
	}
	if cfg.Server != nil {
		opts = append(opts, nats.InProcessServer(cfg.Server.NATS()))
		nc, err := nats.Connect("", opts...)
		if err != nil {
			return nil, fmt.Errorf("connect in process: %w", err)
		}
		return nc, nil
	}
	if err := CheckURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		opts = append(opts, nats.Secure(cfg.TLS))
	}
	opts = append(opts, nats.RetryOnFailedConnect(true))
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", cfg.URL, err)
	}
	if !nc.IsConnected() {
		log.Warn("nats not reachable yet, retrying in the background", "url", cfg.URL)
	}
	return nc, nil
}

// CheckURL rejects NATS URLs that can never work. Several URLs, the
// members of one cluster, may be given comma-separated; each is checked.
func CheckURL(raw string) error {
	if raw == "" {
		return errors.New("nats url: empty")
	}
	for one := range strings.SplitSeq(raw, ",") {
		if err := checkOneURL(strings.TrimSpace(one)); err != nil {
			return err
		}
	}
	return nil
}

func checkOneURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("nats url: %w", err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("nats url %q: scheme must be nats, tls, ws or wss", raw)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("nats url %q: no host", raw)
	}
	return nil
}
