package tlsconfig

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pemFiles writes a self-signed certificate, its key and a non-PEM file
// into a temporary directory and returns their paths.
func pemFiles(t *testing.T) (cert, key, junk string) {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, _, err := MakeSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, junk = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "junk")
	for f, b := range map[string][]byte{cert: certPEM, key: keyPEM, junk: []byte("not pem")} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, junk
}

func TestServer(t *testing.T) {
	cert, key, junk := pemFiles(t)
	tests := []struct {
		name     string
		files    Files
		wantNil  bool
		auth     tls.ClientAuthType
		wantErr  error
		errMatch string
	}{
		{"nothing: no TLS", Files{}, true, 0, nil, ""},
		{"certificate", Files{Cert: cert, Key: key}, false, tls.NoClientCert, nil, ""},
		{"with CA: client certificates required", Files{Cert: cert, Key: key, CA: cert}, false, tls.RequireAndVerifyClientCert, nil, ""},
		{"CA only", Files{CA: cert}, false, 0, ErrNoCertificate, ""},
		{"certificate without key", Files{Cert: cert}, false, 0, ErrPair, ""},
		{"key without certificate", Files{Key: key}, false, 0, ErrPair, ""},
		{"missing certificate file", Files{Cert: cert + ".no", Key: key}, false, 0, os.ErrNotExist, "certificate"},
		{"CA not PEM", Files{Cert: cert, Key: key, CA: junk}, false, 0, nil, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Server(tt.files)
			checkErr(t, err, tt.wantErr, tt.errMatch)
			if err != nil {
				return
			}
			if (c == nil) != tt.wantNil {
				t.Fatalf("Server = %v, want nil: %v", c, tt.wantNil)
			}
			if c != nil && (c.ClientAuth != tt.auth || c.MinVersion != tls.VersionTLS12 || len(c.Certificates) != 1) {
				t.Errorf("Server: auth %v min %x certs %d", c.ClientAuth, c.MinVersion, len(c.Certificates))
			}
		})
	}
}

func TestClient(t *testing.T) {
	cert, key, junk := pemFiles(t)
	tests := []struct {
		name     string
		files    Files
		wantNil  bool
		roots    bool
		certs    int
		wantErr  error
		errMatch string
	}{
		{"nothing: defaults", Files{}, true, false, 0, nil, ""},
		{"CA", Files{CA: cert}, false, true, 0, nil, ""},
		{"client certificate", Files{Cert: cert, Key: key}, false, false, 1, nil, ""},
		{"both", Files{Cert: cert, Key: key, CA: cert}, false, true, 1, nil, ""},
		{"key without certificate", Files{Key: key, CA: cert}, false, false, 0, ErrPair, ""},
		{"missing CA", Files{CA: cert + ".no"}, false, false, 0, os.ErrNotExist, "ca"},
		{"CA not PEM", Files{CA: junk}, false, false, 0, nil, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Client(tt.files)
			checkErr(t, err, tt.wantErr, tt.errMatch)
			if err != nil {
				return
			}
			if (c == nil) != tt.wantNil {
				t.Fatalf("Client = %v, want nil: %v", c, tt.wantNil)
			}
			if c != nil && ((c.RootCAs != nil) != tt.roots || len(c.Certificates) != tt.certs || c.MinVersion != tls.VersionTLS12) {
				t.Errorf("Client: roots %v certs %d min %x", c.RootCAs != nil, len(c.Certificates), c.MinVersion)
			}
		})
	}
}

// checkErr fails unless err is want (errors.Is) and contains match; with
// neither, err must be nil.
func checkErr(t *testing.T, err, want error, match string) {
	t.Helper()
	switch {
	case want == nil && match == "":
		if err != nil {
			t.Fatalf("error %v", err)
		}
	case err == nil:
		t.Fatalf("no error, want %v %q", want, match)
	case want != nil && !errors.Is(err, want), !strings.Contains(err.Error(), match):
		t.Fatalf("error %v, want %v %q", err, want, match)
	}
}

func TestSelfSignedKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cert, key, err := SelfSigned(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(cert)
	cert2, _, err := SelfSigned(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(cert2)
	if string(first) != string(again) {
		t.Error("a second start made a new certificate")
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file %v %v, want mode 0600", fi, err)
	}
	if c, err := Server(Files{Cert: cert, Key: key}); err != nil || c == nil {
		t.Errorf("Server with the self-signed pair: %v", err)
	}
}
