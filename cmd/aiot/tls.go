package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// tlsOptions are the TLS flags: the shared HTTP listener (dashboard, /ws,
// /node) and NATS (the embedded server's client listener, or the trust of
// an external one).
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
	certFile, keyFile := o.cert, o.key
	switch {
	case o.selfSigned && (o.cert != "" || o.key != ""):
		return nil, errors.New("--tls-self-signed: not with --tls-cert/--tls-key")
	case o.selfSigned:
		var err error
		if certFile, keyFile, err = selfSigned(filepath.Join(dataDir, "tls"), log); err != nil {
			return nil, fmt.Errorf("--tls-self-signed: %w", err)
		}
	case o.cert == "" && o.key == "":
		return nil, nil
	case o.cert == "" || o.key == "":
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// natsServerTLS is the embedded NATS server's client TLS; nil without.
func (o *tlsOptions) natsServerTLS() (*tls.Config, error) {
	switch {
	case o.natsCert == "" && o.natsKey == "":
		return nil, nil
	case o.natsCert == "" || o.natsKey == "":
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(o.natsCert, o.natsKey)
	if err != nil {
		return nil, fmt.Errorf("--nats-tls-cert/--nats-tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// natsClientTLS is the TLS of connections to an external NATS: nil (plain,
// or TLS with the system's roots when the URL or server asks for it) unless
// --nats-ca is given.
func (o *tlsOptions) natsClientTLS() (*tls.Config, error) {
	if o.natsCA == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(o.natsCA)
	if err != nil {
		return nil, fmt.Errorf("--nats-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--nats-ca %s: no PEM certificate", o.natsCA)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// selfSigned returns the self-signed certificate and key kept in dir,
// making them first when missing, unreadable or expiring within a day.
func selfSigned(dir string, log *slog.Logger) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "self-signed.crt"), filepath.Join(dir, "self-signed.key")
	if pair, err := tls.LoadX509KeyPair(certFile, keyFile); err == nil && pair.Leaf != nil &&
		time.Until(pair.Leaf.NotAfter) > 24*time.Hour {
		log.Info("tls: self-signed certificate", "file", certFile, "sha256", fingerprint(pair.Leaf.Raw))
		return certFile, keyFile, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPEM, keyPEM, der, err := makeSelfSigned()
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	log.Info("tls: made a self-signed certificate: browsers will warn until you trust it", "file", certFile, "sha256", fingerprint(der))
	return certFile, keyFile, nil
}

// makeSelfSigned makes an ECDSA P-256 certificate, valid for a year, for
// localhost, this host's name and the loopback addresses.
func makeSelfSigned() (certPEM, keyPEM, der []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, err
	}
	names := []string{"localhost"}
	if host, err := os.Hostname(); err == nil && host != "" && host != "localhost" {
		names = append(names, host)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"goaiot self-signed"}, CommonName: names[len(names)-1]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, der, nil
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}
