package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is everything one `aiot bench` run measured.
type Report struct {
	Started time.Time `json:"started"`
	Machine Machine   `json:"machine"`
	Target  Target    `json:"target"`
	// Startup is set when bench started the system itself.
	Startup *Startup `json:"startup,omitempty"`
	Results []Result `json:"results"`
	// Errors are scenarios or baselines that could not run.
	Errors []string `json:"errors,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model"`
	MemoryMB int64  `json:"memory_mb"`
	Load     string `json:"load_before"` // /proc/loadavg at the start
	Go       string `json:"go"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int64
			if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
				m.MemoryMB = kb >> 10
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.TrimSpace(string(b))
	}
	return m
}

// Result is one measured path of one scenario.
type Result struct {
	Scenario string `json:"scenario"`
	// Path says what was measured, e.g. "coap → browser" or "baseline:
	// no-op go-coap".
	Path string `json:"path"`
	// Baseline marks rows measured on a reference system.
	Baseline  bool `json:"baseline,omitempty"`
	Nodes     int  `json:"nodes"`
	Receivers int  `json:"receivers"`
	// Rate is the offered rate in values/s; 0 for a closed loop.
	Rate    float64 `json:"rate"`
	Seconds float64 `json:"seconds"`
	// Sent counts values (or commands, registrations) sent.
	Sent int64 `json:"sent"`
	// Expected is Sent times the receivers; Delivered + Superseded + Lost
	// equal it.
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Superseded int64 `json:"superseded"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates,omitempty"`
	// PerSecond is Delivered per receiver per second.
	PerSecond float64   `json:"per_second"`
	Latency   *Latency  `json:"latency_ms,omitempty"`
	Server    *Resource `json:"server,omitempty"`
	// Spread compares the receivers (browsers) of the row, when several.
	Spread *Spread `json:"spread,omitempty"`
	// Extra holds scenario-specific counts (gateway rejections, CON
	// timeouts, nodes online...).
	Extra map[string]any `json:"extra,omitempty"`
}

// Latency percentiles, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func latency(h *hdrhistogram.Histogram) *Latency {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	q := func(p float64) float64 { return float64(h.ValueAtQuantile(p)) / 1000 }
	return &Latency{Count: h.TotalCount(), P50: q(50), P99: q(99), P999: q(99.9), Max: float64(h.Max()) / 1000}
}

// Spread is how far apart the slowest and the fastest receiver of a row
// are: values received per second and p99 latency.
type Spread struct {
	MinPerSecond float64 `json:"min_per_second"`
	MaxPerSecond float64 `json:"max_per_second"`
	MinP99       float64 `json:"min_p99_ms"`
	MaxP99       float64 `json:"max_p99_ms"`
}

// spread measures rs over secs; nil for fewer than two receivers.
func spread(rs []*receiver, secs float64) *Spread {
	if len(rs) < 2 || secs <= 0 {
		return nil
	}
	s := &Spread{MinPerSecond: -1, MinP99: -1}
	for _, r := range rs {
		ps := float64(r.count.Load()) / secs
		r.mu.Lock()
		p99 := float64(r.hist.ValueAtQuantile(99)) / 1000
		r.mu.Unlock()
		if s.MinPerSecond < 0 || ps < s.MinPerSecond {
			s.MinPerSecond = ps
		}
		if s.MinP99 < 0 || p99 < s.MinP99 {
			s.MinP99 = p99
		}
		s.MaxPerSecond, s.MaxP99 = max(s.MaxPerSecond, ps), max(s.MaxP99, p99)
	}
	return s
}

// Resource is what the server process used while a path was measured
// (zero against an external server), and the CPU bench itself used.
type Resource struct {
	BenchCores float64 `json:"bench_cpu_cores"`
	Cores      float64 `json:"cpu_cores"`
	CPUSec     float64 `json:"cpu_seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	EndRSSMB   float64 `json:"end_rss_mb"`
	StartRSSMB float64 `json:"start_rss_mb"`
}

func resource(u usage) *Resource {
	if u.CPU == 0 && u.PeakRSS == 0 && u.Self == 0 {
		return nil
	}
	r := &Resource{Cores: u.Cores(), CPUSec: u.CPU.Seconds(), PeakRSSMB: mb(u.PeakRSS), EndRSSMB: mb(u.EndRSS), StartRSSMB: mb(u.StartRSS)}
	if u.Wall > 0 {
		r.BenchCores = u.Self.Seconds() / u.Wall.Seconds()
	}
	return r
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteTable writes r as aligned text tables.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %d MB, load before %s, %s\n", m.CPUs, m.CPUModel, m.MemoryMB, m.Load, m.Go)
	fmt.Fprintf(w, "target: %s", r.Target.Kind)
	if r.Startup != nil {
		s := r.Startup
		fmt.Fprintf(w, " (child aiot run: ready in %.0f ms, %.0f ms by its own clock; idle RSS %.1f MB)", s.ReadyMS, s.ReportedMS, s.IdleRSSMB)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpath\tnodes\trcv\trate/s\tsent\tdelivered\tsuperseded\tlost\tper s\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\tcpu\tpeak RSS MB\tbench cpu\t")
	for _, x := range r.Results {
		lat := []string{"-", "-", "-", "-"}
		if x.Latency != nil {
			lat = []string{f3(x.Latency.P50), f3(x.Latency.P99), f3(x.Latency.P999), f3(x.Latency.Max)}
		}
		cpu, rss, bcpu := "-", "-", "-"
		if x.Server != nil {
			cpu, rss, bcpu = fmt.Sprintf("%.2f", x.Server.Cores), fmt.Sprintf("%.1f", x.Server.PeakRSSMB), fmt.Sprintf("%.2f", x.Server.BenchCores)
		}
		rate := "max"
		if x.Rate > 0 {
			rate = fmt.Sprintf("%.0f", x.Rate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			x.Scenario, x.Path, x.Nodes, x.Receivers, rate, x.Sent, x.Delivered, x.Superseded, x.Lost, x.PerSecond,
			lat[0], lat[1], lat[2], lat[3], cpu, rss, bcpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Results {
		if s := x.Spread; s != nil {
			fmt.Fprintf(w, "%s / %s: per browser %.0f–%.0f values/s, p99 %s–%s ms\n", x.Scenario, x.Path,
				s.MinPerSecond, s.MaxPerSecond, f3(s.MinP99), f3(s.MaxP99))
		}
		if len(x.Extra) > 0 {
			b, _ := json.Marshal(x.Extra)
			fmt.Fprintf(w, "%s / %s: %s\n", x.Scenario, x.Path, b)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	return nil
}

func f3(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3f", v)
}
