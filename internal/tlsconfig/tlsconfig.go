// Package tlsconfig builds every TLS configuration goaiot uses from PEM
// files: listeners (HTTP, the embedded NATS client port, a hub's leaf
// port) with Server, dialers (an external NATS, a site's link to its hub,
// the MQTT bridge's broker) with Client, and the self-signed certificate of
// --tls-self-signed with SelfSigned. TLS 1.2 is the floor everywhere.
//
// Errors name what is wrong ("certificate and key go together", "ca FILE:
// no PEM certificate") but not the flag: callers wrap them with theirs.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files are the PEM files of one TLS endpoint; any may be empty.
type Files struct {
	Cert string // certificate chain (with Key)
	Key  string // private key of Cert
	CA   string // CA that signs the peer's certificate
}

// none reports whether no file is given.
func (f Files) none() bool { return f.Cert == "" && f.Key == "" && f.CA == "" }

// ErrPair is returned when only one of a certificate and its key is given.
var ErrPair = errors.New("certificate and key go together")

// ErrNoCertificate is returned for a listener given a CA but no certificate.
var ErrNoCertificate = errors.New("a listener needs a certificate and its key")

// Server is a listener's TLS config: its certificate, and with a CA the
// peers' certificates are required and verified. Nil when no file is given.
func Server(f Files) (*tls.Config, error) {
	if f.none() {
		return nil, nil
	}
	certs, err := certificates(f)
	if err != nil {
		return nil, err
	}
	if certs == nil {
		return nil, ErrNoCertificate
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if cfg.ClientCAs, err = pool(f.CA); err != nil {
		return nil, err
	}
	if cfg.ClientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client is a dialer's TLS config: the CA it trusts (default: the system's
// roots) and an optional client certificate. Nil when no file is given.
func Client(f Files) (*tls.Config, error) {
	if f.none() {
		return nil, nil
	}
	certs, err := certificates(f)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if cfg.RootCAs, err = pool(f.CA); err != nil {
		return nil, err
	}
	return cfg, nil
}

// certificates loads f's key pair; nil when neither file is given.
func certificates(f Files) ([]tls.Certificate, error) {
	switch {
	case f.Cert == "" && f.Key == "":
		return nil, nil
	case f.Cert == "" || f.Key == "":
		return nil, ErrPair
	}
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return []tls.Certificate{c}, nil
}

// pool reads the PEM certificates of file; nil when file is empty.
func pool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca %s: no PEM certificate", file)
	}
	return p, nil
}
