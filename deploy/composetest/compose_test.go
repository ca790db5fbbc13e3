package composetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// repoRoot is where compose.yaml, the Dockerfile and cmd/aiot are.
const repoRoot = "../.."

func loadProject(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, "compose.yaml")},
		cli.WithWorkingDirectory(repoRoot), cli.WithName("goaiot"), cli.WithProfiles(profiles),
		cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

func env(s types.ServiceConfig, name string) string {
	if v, ok := s.Environment[name]; ok && v != nil {
		return *v
	}
	return ""
}

// command is the service's aiot command (the image's entrypoint is /aiot).
func command(s types.ServiceConfig) string {
	if len(s.Command) == 0 {
		return "run"
	}
	return s.Command[0]
}

func TestComposeLoads(t *testing.T) {
	p := loadProject(t)
	if got := p.ServiceNames(); !slices.Equal(sorted(got), []string{"hub", "site-lyon", "site-paris"}) {
		t.Fatalf("default services %v, want the hub and two sites", got)
	}
	t.Run("single profile still runs everything in one container", func(t *testing.T) {
		s, err := loadProject(t, "single").GetService("aiot")
		if err != nil || command(s) != "run" {
			t.Fatalf("aiot service: %v, command %v", err, s.Command)
		}
	})
	for name, s := range p.Services {
		t.Run(name+" builds from the project's Dockerfile", func(t *testing.T) {
			if s.Build == nil {
				t.Fatal("no build")
			}
			df := filepath.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Fatalf("dockerfile: %v", err)
			}
		})
	}
}

// TestComposeTopologyFits checks what a container engine would only show at
// run time: the sites reach the hub's leaf port with a login the hub knows.
func TestComposeTopologyFits(t *testing.T) {
	p := loadProject(t)
	hub, err := p.GetService("hub")
	if err != nil {
		t.Fatal(err)
	}
	if command(hub) != "hub" {
		t.Fatalf("hub command %v", hub.Command)
	}
	_, leafPort, err := net.SplitHostPort(env(hub, "AIOT_LEAF_LISTEN"))
	if err != nil {
		t.Fatalf("hub AIOT_LEAF_LISTEN: %v", err)
	}
	logins := leafUsers(t, p, hub)
	names, prefixes := map[string]string{}, map[string]string{}
	for _, s := range p.Services {
		if command(s) != "site" {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			site := env(s, "AIOT_SITE")
			u, err := url.Parse(env(s, "AIOT_HUB"))
			if err != nil {
				t.Fatalf("AIOT_HUB: %v", err)
			}
			if u.Scheme != "nats-leaf" || u.Hostname() != "hub" || u.Port() != leafPort {
				t.Errorf("AIOT_HUB %s: want nats-leaf://…@hub:%s", u.Redacted(), leafPort)
			}
			pw, _ := u.User.Password()
			if u.User.Username() != site || logins[site] != pw {
				t.Errorf("site %s logs in as %q: not a leaf user of the hub with that password", site, u.User.Username())
			}
			if other, ok := names[site]; ok || site == "" || site == "hub" {
				t.Errorf("site name %q (also %s): must be unique and not hub", site, other)
			}
			names[site] = s.Name
			prefix := env(s, "AIOT_SIM_PREFIX")
			if other, ok := prefixes[prefix]; ok {
				t.Errorf("AIOT_SIM_PREFIX %q also used by %s: simulated node ids would collide", prefix, other)
			}
			prefixes[prefix] = s.Name
			if !slices.Contains(s.GetDependencies(), "hub") {
				t.Errorf("does not depend on the hub")
			}
		})
	}
	if len(names) < 2 {
		t.Fatalf("%d sites, want at least two", len(names))
	}
	t.Run("no host port taken twice", func(t *testing.T) {
		seen := map[string]string{}
		for _, s := range p.Services {
			for _, port := range s.Ports {
				key := port.Published + "/" + port.Protocol
				if other, ok := seen[key]; ok {
					t.Errorf("host port %s: %s and %s", key, other, s.Name)
				}
				seen[key] = s.Name
			}
		}
	})
}

// leafUsers reads the hub's leaf-users config: site → password.
func leafUsers(t *testing.T, p *types.Project, hub types.ServiceConfig) map[string]string {
	t.Helper()
	path := env(hub, "AIOT_LEAF_USERS")
	for _, c := range hub.Configs {
		if c.Target != path {
			continue
		}
		out := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(p.Configs[c.Source].Content))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
				out[f[0]] = f[1]
			}
		}
		return out
	}
	t.Fatalf("AIOT_LEAF_USERS %q is not a config mounted in the hub", path)
	return nil
}

// TestComposeVariablesAreFlags: every AIOT_* variable of a service is the
// environment twin of a flag of its command, as `aiot <command> --help` lists them.
func TestComposeVariablesAreFlags(t *testing.T) {
	bin := buildAiot(t)
	for _, profile := range [][]string{nil, {"single"}, {"cluster"}} {
		for _, s := range loadProject(t, profile...).Services {
			t.Run(s.Name, func(t *testing.T) {
				out, _ := exec.Command(bin, command(s), "--help").CombinedOutput()
				for name := range s.Environment {
					if strings.HasPrefix(name, "AIOT_") && !strings.Contains(string(out), "["+name+"]") {
						t.Errorf("%s is no flag of aiot %s", name, command(s))
					}
				}
			})
		}
	}
}

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "aiot-compose-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "aiot")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/aiot")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func buildAiot(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

var listening = regexp.MustCompile(`msg=listening what=(\S+) (?:url|addr)=(\S+)`)

// process is one service of the topology run as an aiot process.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	addrs map[string]string
	done  chan struct{}
}

func (p *process) addr(t *testing.T, what string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		a, ok := p.addrs[what]
		p.mu.Unlock()
		if ok {
			return a
		}
		select {
		case <-p.done:
			t.Fatalf("aiot exited:\n%s", p.log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no %s listener:\n%s", what, p.log())
	return ""
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// startService runs service s of the compose file as a process: its
// command and environment, with listeners moved to free loopback ports,
// files to temporary ones and the service name "hub" to the hub's address.
func startService(t *testing.T, p *types.Project, s types.ServiceConfig, hubLeaf string) *process {
	t.Helper()
	environ := os.Environ()
	for name, v := range s.Environment {
		if v != nil {
			environ = append(environ, name+"="+*v)
		}
	}
	dir := t.TempDir()
	environ = append(environ, "AIOT_DATA="+filepath.Join(dir, "data"), "AIOT_LOG_FORMAT=text",
		"AIOT_HTTP=127.0.0.1:0", "AIOT_NATS_LISTEN=127.0.0.1:0", "AIOT_MQTT_LISTEN=127.0.0.1:0",
		"AIOT_COAP_LISTEN=127.0.0.1:0", "AIOT_MQTTSN_LISTEN="+freeUDP(t), "AIOT_LEAF_LISTEN=127.0.0.1:0")
	if env(s, "AIOT_AUTH_DIR") != "" {
		environ = append(environ, "AIOT_AUTH_DIR="+filepath.Join(dir, "data", "keys"))
	}
	for _, c := range s.Configs {
		path := filepath.Join(dir, c.Source)
		if err := os.WriteFile(path, []byte(p.Configs[c.Source].Content), 0o600); err != nil {
			t.Fatal(err)
		}
		for name, v := range s.Environment {
			if v != nil && *v == c.Target {
				environ = append(environ, name+"="+path)
			}
		}
	}
	if hub := env(s, "AIOT_HUB"); hub != "" {
		environ = append(environ, "AIOT_HUB="+strings.Replace(hub, "@hub:7422", "@"+hubLeaf, 1))
	}
	proc := &process{cmd: exec.Command(buildAiot(t), command(s)), addrs: map[string]string{}, done: make(chan struct{})}
	proc.cmd.Env = environ
	stderr, err := proc.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(proc.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			proc.mu.Lock()
			proc.lines = append(proc.lines, sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				proc.addrs[m[1]] = m[2]
			}
			proc.mu.Unlock()
		}
		_ = proc.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = proc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-proc.done:
		case <-time.After(10 * time.Second):
			_ = proc.cmd.Process.Kill()
			<-proc.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", s.Name, proc.log())
		}
	})
	return proc
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// TestComposeTopologyRuns runs the compose file's hub and sites as
// processes and waits until the hub sees every site up with the simulated
// nodes of each.
func TestComposeTopologyRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the topology")
	}
	p := loadProject(t)
	hubSvc, err := p.GetService("hub")
	if err != nil {
		t.Fatal(err)
	}
	hub := startService(t, p, hubSvc, "")
	leaf := hub.addr(t, "leafnodes")
	want := map[string]bool{}
	for _, s := range p.Services {
		if command(s) == "site" {
			startService(t, p, s, leaf)
			want[env(s, "AIOT_SITE")] = true
		}
	}
	hubHTTP := hub.addr(t, "http")
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var up bool
		if up, last = sitesUp(t, hubHTTP, want); up {
			t.Logf("hub's /sites: %s", last)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("hub's /sites: %s", last)
}

// sitesUp tells whether every wanted site is up, sourced, with nodes, and
// what the hub says.
func sitesUp(t *testing.T, hubHTTP string, want map[string]bool) (bool, string) {
	t.Helper()
	resp, err := http.Get(hubHTTP + "/sites")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	var v struct {
		Sites []struct {
			Site    string `json:"site"`
			Link    string `json:"link"`
			Nodes   int    `json:"nodes"`
			Sourced bool   `json:"sourced"`
		} `json:"sites"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return false, err.Error()
	}
	ok := 0
	for _, s := range v.Sites {
		if want[s.Site] && s.Link == "up" && s.Sourced && s.Nodes > 0 {
			ok++
		}
	}
	return ok == len(want), fmt.Sprintf("%+v", v.Sites)
}

// TestComposeNATSSignsIn: a service whose NATS listener other hosts reach
// makes its clients sign in (aiot refuses to start otherwise, unless
// --insecure-nats, which compose.yaml must not use).
func TestComposeNATSSignsIn(t *testing.T) {
	for _, profile := range [][]string{nil, {"single"}, {"cluster"}} {
		for name, s := range loadProject(t, profile...).Services {
			t.Run(name, func(t *testing.T) {
				host, _, err := net.SplitHostPort(env(s, "AIOT_NATS_LISTEN"))
				if err != nil || host == "127.0.0.1" || host == "localhost" {
					return
				}
				if env(s, "AIOT_AUTH_DIR") == "" && env(s, "AIOT_AUTH") == "" {
					t.Errorf("NATS on %s without AIOT_AUTH_DIR or AIOT_AUTH", env(s, "AIOT_NATS_LISTEN"))
				}
				if env(s, "AIOT_INSECURE_NATS") != "" {
					t.Errorf("AIOT_INSECURE_NATS set")
				}
			})
		}
	}
}
