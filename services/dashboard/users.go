package dashboard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/goaiot/goaiot/internal/linefile"
)

// Roles of a browser.
const (
	// RoleViewer sees everything and may ask for history, but sends no
	// commands.
	RoleViewer = "viewer"
	// RoleOperator may also send commands to nodes.
	RoleOperator = "operator"
)

// User is one line of a users file.
type User struct {
	Name string
	Hash string // bcrypt ($2a$, $2b$ or $2y$, as htpasswd -B writes)
	Role string // RoleViewer or RoleOperator
}

// Users are the accounts that may log in to the dashboard.
type Users struct {
	list   []User
	byName map[string]int

	dummyOnce sync.Once
	dummyHash []byte
}

// dummy is a hash compared against when the user does not exist, so that a
// wrong name costs as much time as a wrong password.
func (u *Users) dummy() []byte {
	u.dummyOnce.Do(func() {
		cost := bcrypt.DefaultCost
		if len(u.list) > 0 {
			cost, _ = bcrypt.Cost([]byte(u.list[0].Hash))
		}
		u.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), cost)
	})
	return u.dummyHash
}

// maxUserName bounds a user name (also what a login attempt may log).
const maxUserName = 64

// ParseUsers reads a users file: one "name:bcrypt-hash[:role]" per line,
// the format of `htpasswd -B` with an optional role (operator when absent).
// Blank lines and lines starting with '#' are ignored (package linefile).
func ParseUsers(r io.Reader) (*Users, error) {
	u := &Users{byName: make(map[string]int)}
	err := linefile.Each(r, func(_ int, line string) error {
		user, err := parseUserLine(line)
		if err != nil {
			return err
		}
		if _, dup := u.byName[user.Name]; dup {
			return fmt.Errorf("user %q given twice", user.Name)
		}
		u.byName[user.Name] = len(u.list)
		u.list = append(u.list, user)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	return u, nil
}

func parseUserLine(line string) (User, error) {
	parts := strings.Split(line, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return User{}, errors.New("want name:bcrypt-hash[:role]")
	}
	u := User{Name: parts[0], Hash: parts[1], Role: RoleOperator}
	if len(parts) == 3 {
		u.Role = parts[2]
	}
	if err := checkUserName(u.Name); err != nil {
		return User{}, err
	}
	if err := checkRole(u.Role); err != nil {
		return User{}, err
	}
	if _, err := bcrypt.Cost([]byte(u.Hash)); err != nil || !strings.HasPrefix(u.Hash, "$2") {
		return User{}, fmt.Errorf("user %q: not a bcrypt hash (make one with 'aiot passwd' or 'htpasswd -B')", u.Name)
	}
	return u, nil
}

func checkUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > maxUserName:
		return fmt.Errorf("user name longer than %d bytes", maxUserName)
	case strings.ContainsAny(name, ": \t\r\n"):
		return fmt.Errorf("user name %q: no ':' or spaces", name)
	}
	return nil
}

func checkRole(role string) error {
	if role != RoleViewer && role != RoleOperator {
		return fmt.Errorf("role %q: want %s or %s", role, RoleViewer, RoleOperator)
	}
	return nil
}

// LoadUsers reads a users file (see ParseUsers).
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer f.Close()
	u, err := ParseUsers(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.list) }

// lookup returns the user called name.
func (u *Users) lookup(name string) (User, bool) {
	i, ok := u.byName[name]
	if !ok {
		return User{}, false
	}
	return u.list[i], true
}

// authenticate checks a name and password and returns the user.
func (u *Users) authenticate(name, password string) (User, bool) {
	user, ok := u.lookup(name)
	hash := u.dummy()
	if ok {
		hash = []byte(user.Hash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return User{}, false
	}
	return user, true
}

// hashCost is the bcrypt cost of HashPassword: bcrypt's default; tests
// lower it, as each hash at the default costs seconds under -race.
var hashCost = bcrypt.DefaultCost

// HashPassword hashes a password with bcrypt at the default cost.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), hashCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// SetUser adds or replaces user name in the users file at path (created
// with mode 0600 if missing) with a bcrypt hash of password and role. Other
// lines, comments included, are kept as they are.
func SetUser(path, name, password, role string) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	if err := checkRole(role); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("users: %w", err)
	}
	if _, err := ParseUsers(bytes.NewReader(old)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var out bytes.Buffer
	line := name + ":" + hash + ":" + role
	replaced := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		l := sc.Text()
		if n, _, _ := strings.Cut(strings.TrimSpace(l), ":"); n == name && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			l, replaced = line, true
		}
		out.WriteString(l + "\n")
	}
	if !replaced {
		out.WriteString(line + "\n")
	}
	return writeFileAtomic(path, out.Bytes())
}

// writeFileAtomic replaces path with data, mode 0600.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*")
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("users: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return nil
}
