package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux architecture Go supports).
const clockTicks = 100

// cpuTime is the user plus system CPU time of pid so far.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // utime, field 14
	s, err2 := strconv.ParseInt(f[12], 10, 64) // stime, field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// memory is pid's resident set now and its peak (VmRSS, VmHWM), in bytes.
func memory(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak, sc.Err()
}

// resetPeak resets VmHWM to the current RSS (Linux 4.0+). It fails for
// another user's process: its VmHWM is then the lifetime peak.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// usage is what a process used during one measurement.
type usage struct {
	CPU      time.Duration // CPU time
	Wall     time.Duration
	PeakRSS  int64 // bytes
	EndRSS   int64
	StartRSS int64
	// Self is the CPU time bench itself used meanwhile (load generator,
	// browsers, receivers share the machine with the server).
	Self time.Duration
}

// Cores is the average number of cores busy.
func (u usage) Cores() float64 {
	if u.Wall <= 0 {
		return 0
	}
	return u.CPU.Seconds() / u.Wall.Seconds()
}

// sampler watches one process: its CPU time between start and stop, and
// its peak resident memory (VmRSS sampled every 50 ms, and VmHWM when it
// could be reset at the start). A process that ends meanwhile keeps its
// last readings.
type sampler struct {
	pid    int
	hwm    bool // VmHWM was reset: it is this measurement's peak
	cancel context.CancelFunc
	wg     sync.WaitGroup
	began  time.Time
	cpu0   time.Duration
	rss0   int64 // VmRSS at the start
	self0  time.Duration
	mu     sync.Mutex
	peak   int64
	cpu    time.Duration // the last CPU time read
	rss    int64         // the last VmRSS read
}

// sample starts watching pid; a pid of 0 (an external server) measures
// nothing.
func sample(pid int) *sampler {
	s := &sampler{pid: pid, began: time.Now()}
	s.self0, _ = cpuTime(os.Getpid())
	if pid == 0 {
		return s
	}
	s.hwm = resetPeak(pid) == nil
	s.rss0, _, _ = memory(pid)
	s.cpu0, _ = cpuTime(pid)
	s.cpu, s.rss = s.cpu0, s.rss0
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			s.observe()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return s
}

func (s *sampler) observe() {
	rss, peak, err := memory(s.pid)
	if err != nil {
		return
	}
	if !s.hwm {
		peak = 0
	}
	cpu, cerr := cpuTime(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = max(s.peak, rss, peak)
	s.rss = rss
	if cerr == nil {
		s.cpu = cpu
	}
}

// stop ends the measurement.
func (s *sampler) stop() usage {
	u := usage{Wall: time.Since(s.began)}
	if self, err := cpuTime(os.Getpid()); err == nil {
		u.Self = self - s.self0
	}
	if s.pid == 0 {
		return u
	}
	s.cancel()
	s.wg.Wait()
	s.observe()
	s.mu.Lock()
	defer s.mu.Unlock()
	u.CPU = s.cpu - s.cpu0
	u.EndRSS = s.rss
	u.StartRSS = s.rss0
	u.PeakRSS = s.peak
	return u
}

// udpDrops is the host's count of UDP datagrams dropped for a full receive
// buffer (RcvbufErrors in /proc/net/snmp): every process's, so a delta is
// an upper bound on what one run lost that way.
func udpDrops() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var head []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, k := range head {
			if k == "RcvbufErrors" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

// udpSocketDrops counts the datagrams dropped for a full receive buffer
// at the UDP sockets bound to addr's port (the drops column of
// /proc/net/udp and /proc/net/udp6): the gateway's own socket, where
// udpDrops counts the whole host's, the load tool's sockets included.
// 0 when addr is empty or the files cannot be read (not Linux).
func udpSocketDrops(addr string) int64 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	local := fmt.Sprintf(":%04X", port)
	var n int64
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) < 13 || !strings.HasSuffix(f[1], local) {
				continue
			}
			d, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
			n += d
		}
	}
	return n
}

// samplers watch several processes (dashboards side by side) as one.
type samplers []*sampler

// sampleAll starts watching every pid.
func sampleAll(pids []int) samplers {
	ss := make(samplers, len(pids))
	for i, pid := range pids {
		ss[i] = sample(pid)
	}
	return ss
}

// total ends the measurement: CPU time and memory summed over the
// processes, bench's own CPU counted once.
func (ss samplers) total() usage {
	u, _ := ss.stop()
	return u
}

// stop ends the measurement: CPU time and memory summed over the
// processes, bench's own CPU counted once; each process's own in each.
func (ss samplers) stop() (u usage, each []usage) {
	for i, s := range ss {
		x := s.stop()
		each = append(each, x)
		if i == 0 {
			u.Wall, u.Self = x.Wall, x.Self
		}
		u.CPU += x.CPU
		u.PeakRSS += x.PeakRSS
		u.EndRSS += x.EndRSS
		u.StartRSS += x.StartRSS
	}
	return u, each
}
