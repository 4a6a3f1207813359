package report

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a run was measured.
type Machine struct {
	CPUs     int
	CPUModel string
	MemBytes int64
	Kernel   string
	OS       string
	Go       string
	Versions [][2]string // tool, version
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute load
	// averages when the run started and ended: other work on the machine
	// disturbs every figure.
	LoadBefore, LoadAfter string
}

// LoadAvg returns the 1, 5 and 15 minute load averages, or "".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// ReadMachine reads the machine's description from /proc and /etc; what it
// cannot read stays empty.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.CPUModel = field("/proc/cpuinfo", "model name", ":")
	if v := field("/proc/meminfo", "MemTotal", ":"); v != "" {
		if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			m.MemBytes = kb << 10
		}
	}
	m.OS = strings.Trim(field("/etc/os-release", "PRETTY_NAME", "="), `"`)
	return m
}

// field returns the value after sep of the first line of file whose key
// is key.
func field(file, key, sep string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func writeMachine(b *strings.Builder, m Machine) {
	b.WriteString("## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(b, "| CPU | %d × %s |\n", m.CPUs, orDash(m.CPUModel))
	fmt.Fprintf(b, "| memory | %.1f GiB |\n", float64(m.MemBytes)/(1<<30))
	fmt.Fprintf(b, "| kernel | %s |\n| OS | %s |\n| Go | %s |\n", orDash(m.Kernel), orDash(m.OS), m.Go)
	if m.LoadBefore != "" || m.LoadAfter != "" {
		fmt.Fprintf(b, "| load average (1, 5, 15 min) | %s at the start, %s at the end |\n", orDash(m.LoadBefore), orDash(m.LoadAfter))
	}
	for _, v := range m.Versions {
		fmt.Fprintf(b, "| %s | %s |\n", v[0], orDash(v[1]))
	}
	b.WriteString("\n")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
