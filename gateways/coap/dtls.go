package coap

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	piondtls "github.com/pion/dtls/v3"
	coapNet "github.com/plgd-dev/go-coap/v3/net"

	"github.com/goaiot/goaiot/internal/linefile"
)

// PSKeys holds DTLS pre-shared keys by PSK identity.
type PSKeys map[string][]byte

// ParsePSKeys reads a keys file: one "<identity> <key>" a line, the key in
// hex (an even number of hex digits, at least 16 bytes); blank lines and
// lines starting with '#' are ignored.
func ParsePSKeys(r io.Reader) (PSKeys, error) {
	keys := PSKeys{}
	err := linefile.Each(r, func(_ int, line string) error {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return errors.New("want \"<identity> <hex key>\"")
		}
		key, err := hex.DecodeString(fields[1])
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if len(key) < 16 {
			return fmt.Errorf("key of %d bytes, want at least 16", len(key))
		}
		if _, dup := keys[fields[0]]; dup {
			return fmt.Errorf("identity %q given twice", fields[0])
		}
		keys[fields[0]] = key
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("psk file: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("psk file: no keys")
	}
	return keys, nil
}

// LoadPSKFile reads a keys file (see ParsePSKeys). It refuses a file that
// others than its owner may read.
func LoadPSKFile(path string) (PSKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("psk file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("psk file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("psk file %s: mode %v: readable by others (chmod 600)", path, st.Mode().Perm())
	}
	return ParsePSKeys(f)
}

// PSKCipherSuites are the suites offered: CCM_8 is CoAP's mandatory one
// (RFC 7252 §9.1.3.1), GCM what most stacks prefer.
var PSKCipherSuites = []piondtls.CipherSuiteID{
	piondtls.TLS_PSK_WITH_AES_128_CCM_8,
	piondtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
}

func (k PSKeys) serverOptions(log *slog.Logger) coapNet.DTLSServerOptions {
	return coapNet.NewDTLSServerOptions(
		piondtls.WithPSK(func(identity []byte) ([]byte, error) {
			key, ok := k[string(identity)]
			if !ok {
				log.Warn("dtls: unknown psk identity", "identity", fmt.Sprintf("%q", identity))
				return nil, fmt.Errorf("unknown psk identity %q", identity)
			}
			return key, nil
		}),
		piondtls.WithPSKIdentityHint([]byte("aiot")),
		piondtls.WithCipherSuites(PSKCipherSuites...),
	)
}
