package sites

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/internal/linefile"
)

// ParseLeafUsers reads a hub's leaf users file (aiot hub --leaf-users): one
// "<site> <password or bcrypt hash>" a line, blank lines and # comments
// skipped (package linefile). Each site may send only LeafPublish(site); a
// site named twice, a bad site name or an empty file is refused.
func ParseLeafUsers(r io.Reader) ([]bus.LeafUser, error) {
	var users []bus.LeafUser
	seen := map[string]bool{}
	err := linefile.Each(r, func(_ int, line string) error {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return errors.New("want \"<site> <password>\"")
		}
		if err := ValidateName(fields[0]); err != nil {
			return err
		}
		if seen[fields[0]] {
			return fmt.Errorf("site %q given twice", fields[0])
		}
		seen[fields[0]] = true
		users = append(users, bus.LeafUser{User: fields[0], Password: fields[1], Publish: LeafPublish(fields[0])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, errors.New("no users")
	}
	return users, nil
}

// LoadLeafUsers reads the leaf users file at path (see ParseLeafUsers).
func LoadLeafUsers(path string) ([]bus.LeafUser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users, err := ParseLeafUsers(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return users, nil
}
