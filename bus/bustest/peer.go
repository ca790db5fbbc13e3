package bustest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// install says how to get each real peer the tests run. .ci/run installs
// all of them.
var install = map[string]string{
	"nats":              "go install github.com/nats-io/natscli/nats@v0.5.0",
	"mosquitto":         "apt-get install mosquitto",
	"mosquitto_passwd":  "apt-get install mosquitto",
	"mosquitto_pub":     "apt-get install mosquitto-clients",
	"mosquitto_sub":     "apt-get install mosquitto-clients",
	"coap-client-notls": "apt-get install libcoap3-bin",
	"coap-server-notls": "apt-get install libcoap3-bin",
	"chromium":          "apt-get install chromium",
	"stdbuf":            "apt-get install coreutils",
	"script":            "apt-get install bsdutils",
}

// CI reports whether the tests run under CI (CI=true, as .ci/run sets it),
// where every peer and every network feature the tests need must be there.
func CI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Missing ends a test whose prerequisite (a peer, IPv6 loopback, a fixed
// port) is not there: it fails under CI and skips elsewhere, with the
// reason and how to get it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Peer returns the path of a real protocol peer (the nats CLI, mosquitto and
// its clients, libcoap's programs, chromium), looked up on PATH, then in
// $GOBIN, then in $(go env GOPATH)/bin. Missing, it ends the test with the
// install line (see Missing).
func Peer(t testing.TB, name string) string {
	t.Helper()
	if p, ok := LookPeer(name); ok {
		return p
	}
	how, ok := install[name]
	if !ok {
		how = "install " + name
	}
	Missing(t, "%s not found on PATH, in $GOBIN or $(go env GOPATH)/bin (%s)", name, how)
	return ""
}

// LookPeer is Peer's look-up: PATH, then $GOBIN, then $(go env GOPATH)/bin.
func LookPeer(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range goBinDirs() {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, true
		}
	}
	return "", false
}

// goBinDirs are where `go install` puts programs: $GOBIN, then the bin of
// every GOPATH entry, as the go command itself reports them.
var goBinDirs = sync.OnceValue(func() []string {
	gobin, gopath := os.Getenv("GOBIN"), os.Getenv("GOPATH")
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		if lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); len(lines) == 2 {
			gobin, gopath = lines[0], lines[1]
		}
	}
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	var dirs []string
	if gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, p := range filepath.SplitList(gopath) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
})

// IPv6Loopback ends the test (see Missing) when this machine has no IPv6
// loopback to bind.
func IPv6Loopback(t testing.TB) {
	t.Helper()
	l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		Missing(t, "needs IPv6 loopback [::1]: %v", err)
		return
	}
	l.Close()
}
