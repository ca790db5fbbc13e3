package dashboard

import (
	"strings"
	"testing"
)

// FuzzParseUsers: any users file is refused or gives users with a valid
// name, a known role and a bcrypt hash, each name once.
func FuzzParseUsers(f *testing.F) {
	f.Add("# users\nalice:$2y$05$0123456789012345678901u8V9jNFv7mk5uRNRXQ1HIpyeMJSwJ0W:viewer\n")
	f.Add("bob:x\n")
	f.Add("a:b:c:d\n\n#\n")
	f.Fuzz(func(t *testing.T, in string) {
		u, err := ParseUsers(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, user := range u.list {
			if checkUserName(user.Name) != nil || checkRole(user.Role) != nil || !strings.HasPrefix(user.Hash, "$2") {
				t.Fatalf("accepted %+v", user)
			}
			if got, ok := u.lookup(user.Name); !ok || got != user {
				t.Fatalf("user %q not found by name", user.Name)
			}
		}
	})
}
