package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goaiot/goaiot/sites"
)

// pki writes a CA and, signed by it, a server certificate for 127.0.0.1 and
// a client certificate, as PEM files in dir; it returns their paths.
func pki(t *testing.T, dir string) map[string]string {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aiot test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{"ca": write("ca.pem", "CERTIFICATE", caDER)}
	for i, who := range []string{"server", "client"} {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "aiot " + who},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		if who == "client" {
			tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		out[who+"-cert"] = write(who+".pem", "CERTIFICATE", der)
		out[who+"-key"] = write(who+"-key.pem", "EC PRIVATE KEY", kder)
	}
	return out
}

// TestSiteJoinsOverTLS: a hub whose leaf listener requires TLS and client
// certificates takes a site that has both, and not one without its
// certificate.
func TestSiteJoinsOverTLS(t *testing.T) {
	files := pki(t, t.TempDir())
	hub := startMultisite(t, "hub", "--leaf-listen", "127.0.0.1:0",
		"--leaf-tls-cert", files["server-cert"], "--leaf-tls-key", files["server-key"], "--leaf-tls-ca", files["ca"],
		"--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--data", t.TempDir())
	hubURL := "tls://" + hub.url(t, "leafnodes")
	startMultisite(t, append([]string{"site", "--site", "secure", "--hub", hubURL, "--heartbeat", "200ms",
		"--hub-tls-ca", files["ca"], "--hub-tls-cert", files["client-cert"], "--hub-tls-key", files["client-key"]}, randomPorts(t)...)...)
	waitSiteLink(t, hub.url(t, "http"), "secure", sites.LinkUp)

	t.Run("a site without a client certificate is refused", func(t *testing.T) {
		bare := startMultisite(t, append([]string{"site", "--site", "bare", "--hub", hubURL, "--hub-tls-ca", files["ca"]}, randomPorts(t)...)...)
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(hub.logText(), "didn't provide a certificate") {
			if time.Now().After(deadline) {
				t.Fatalf("no TLS refusal logged:\n%s", bare.logText())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if strings.Contains(hub.logText(), "site=bare") {
			t.Fatal("the hub heard from the site without a certificate")
		}
	})
}
