package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/goaiot/goaiot/internal/tlsconfig"
)

// tlsOptions are the TLS flags: the shared HTTP listener (dashboard, /ws,
// /node) and NATS (the embedded server's client listener, or the trust of
// an external one). The configs are built by package tlsconfig.
type tlsOptions struct {
	cert, key  string
	selfSigned bool
	natsCert   string
	natsKey    string
	natsCA     string
}

func (o *tlsOptions) register(fs *flag.FlagSet, embedded bool) {
	fs.StringVar(&o.cert, "tls-cert", "", "serve HTTP (dashboard, /ws, /node) over TLS with this PEM certificate chain (with --tls-key)")
	fs.StringVar(&o.key, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&o.selfSigned, "tls-self-signed", false, "serve HTTP over TLS with a self-signed certificate for localhost and this host, made once and kept in DATA/tls (for trials)")
	if embedded {
		fs.StringVar(&o.natsCert, "nats-tls-cert", "", "embedded NATS: require TLS of every NATS client (not in-process ones), with this PEM certificate (with --nats-tls-key)")
		fs.StringVar(&o.natsKey, "nats-tls-key", "", "PEM private key of --nats-tls-cert")
	}
	fs.StringVar(&o.natsCA, "nats-ca", "", "trust this PEM CA (or self-signed certificate) for a TLS --nats; default: the system's roots")
}

// httpTLS is the HTTP listener's TLS config; nil without TLS.
func (o *tlsOptions) httpTLS(dataDir string, log *slog.Logger) (*tls.Config, error) {
	files := tlsconfig.Files{Cert: o.cert, Key: o.key}
	if o.selfSigned {
		if o.cert != "" || o.key != "" {
			return nil, errors.New("--tls-self-signed: not with --tls-cert/--tls-key")
		}
		var err error
		if files.Cert, files.Key, err = tlsconfig.SelfSigned(filepath.Join(dataDir, "tls"), log); err != nil {
			return nil, fmt.Errorf("--tls-self-signed: %w", err)
		}
	}
	c, err := tlsconfig.Server(files)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return c, nil
}

// natsServerTLS is the embedded NATS server's client TLS; nil without.
func (o *tlsOptions) natsServerTLS() (*tls.Config, error) {
	c, err := tlsconfig.Server(tlsconfig.Files{Cert: o.natsCert, Key: o.natsKey})
	if err != nil {
		return nil, fmt.Errorf("--nats-tls-cert/--nats-tls-key: %w", err)
	}
	return c, nil
}

// natsClientTLS is the TLS of connections to an external NATS: nil (plain,
// or TLS with the system's roots when the URL or server asks for it) unless
// --nats-ca is given.
func (o *tlsOptions) natsClientTLS() (*tls.Config, error) {
	c, err := tlsconfig.Client(tlsconfig.Files{CA: o.natsCA})
	if err != nil {
		return nil, fmt.Errorf("--nats-ca: %w", err)
	}
	return c, nil
}

// tlsFlags are the flags of one TLS endpoint's PEM files: <prefix>-cert,
// <prefix>-key and <prefix>-ca.
type tlsFlags struct{ files tlsconfig.Files }

func (t *tlsFlags) register(fs *flag.FlagSet, prefix, what, caWhat string) {
	fs.StringVar(&t.files.Cert, prefix+"-cert", "", what+": PEM certificate (with -key: TLS on)")
	fs.StringVar(&t.files.Key, prefix+"-key", "", what+": PEM private key of -cert")
	fs.StringVar(&t.files.CA, prefix+"-ca", "", what+": PEM CA that signed "+caWhat)
}
