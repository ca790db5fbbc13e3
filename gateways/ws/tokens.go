package ws

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/linefile"
)

// Tokens are the per-node tokens of --ws-node-tokens: a node whose id is
// listed may connect only with its token. The zero value lists no node.
//
// The file holds one "<node id> <sha256 of the token, 64 hex digits>" per
// line; blank lines and lines starting with # are ignored. Tokens are
// stored hashed so that the file is not itself every node's credential, and
// hashed with plain SHA-256 rather than bcrypt because they are 256 random
// bits (NewToken): there is no dictionary to slow down, while bcrypt would
// cost every handshake tens of milliseconds of CPU, which anyone who can
// reach /node could spend at will with wrong tokens.
type Tokens struct {
	hashes map[string][sha256.Size]byte
}

// LoadTokens reads a tokens file.
func LoadTokens(path string) (Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return Tokens{}, fmt.Errorf("node tokens: %w", err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return Tokens{}, fmt.Errorf("node tokens %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads tokens-file lines from r.
func ParseTokens(r io.Reader) (Tokens, error) {
	t := Tokens{hashes: make(map[string][sha256.Size]byte)}
	err := linefile.Each(r, func(_ int, line string) error {
		id, sum, err := parseTokenLine(line)
		if err != nil {
			return err
		}
		if _, dup := t.hashes[id]; dup {
			return fmt.Errorf("node %s listed twice", id)
		}
		t.hashes[id] = sum
		return nil
	})
	if err != nil {
		return Tokens{}, err
	}
	return t, nil
}

// parseTokenLine splits "<id> <hex sha256>".
func parseTokenLine(line string) (string, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return "", sum, fmt.Errorf("want <node id> <sha256 of the token in hex>")
	}
	if err := bus.ValidateNodeID(fields[0]); err != nil {
		return "", sum, fmt.Errorf("node id: %w", err)
	}
	b, err := hex.DecodeString(fields[1])
	if err != nil || len(b) != sha256.Size {
		return "", sum, fmt.Errorf("node %s: want the token's sha256 in 64 hex digits (aiot keys --ws-node-ids writes them), not the token", fields[0])
	}
	copy(sum[:], b)
	return fields[0], sum, nil
}

// Len is the number of nodes listed.
func (t Tokens) Len() int { return len(t.hashes) }

// listed reports whether id needs a token.
func (t Tokens) listed(id string) bool {
	_, ok := t.hashes[id]
	return ok
}

// check reports whether token is id's, in constant time.
func (t Tokens) check(id, token string) bool {
	want, ok := t.hashes[id]
	got := sha256.Sum256([]byte(token))
	return ok && token != "" && subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// NewToken returns a fresh random token (32 bytes, base64url) and the
// tokens-file line that lists it for node id.
func NewToken(id string) (token, line string, err error) {
	if err := bus.ValidateNodeID(id); err != nil {
		return "", "", fmt.Errorf("node id %q: %w", id, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("random token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(token))
	return token, id + " " + hex.EncodeToString(sum[:]), nil
}

// presentedToken is the token a node presents: an Authorization: Bearer
// header, else the token query parameter.
func presentedToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
	}
	return r.URL.Query().Get("token")
}

// TokensFile is the name WriteTokens gives the tokens file in its directory.
const TokensFile = "ws-node-tokens"

// WriteTokens makes a fresh token for each id: it writes dir/TokensFile
// (hashes, for --ws-node-tokens) and dir/ws-node-<id>.token (the token
// itself, for the node), all 0600. It refuses to overwrite a tokens file.
func WriteTokens(dir string, ids []string) (string, error) {
	path := filepath.Join(dir, TokensFile)
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("node tokens: %s exists; remove it to generate new tokens", path)
	}
	var lines strings.Builder
	lines.WriteString("# websocket node tokens: <node id> <sha256 of the token>; the tokens are in ws-node-<id>.token\n")
	for _, id := range ids {
		tok, line, err := NewToken(id)
		if err != nil {
			return "", fmt.Errorf("node tokens: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ws-node-"+id+".token"), []byte(tok+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("node tokens: %w", err)
		}
		lines.WriteString(line + "\n")
	}
	if err := os.WriteFile(path, []byte(lines.String()), 0o600); err != nil {
		return "", fmt.Errorf("node tokens: %w", err)
	}
	return path, nil
}
