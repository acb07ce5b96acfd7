package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// figures are what the README's performance paragraph quotes; each
// section of the run fills in its own.
type figures struct {
	// points is the scale curve of the agent measured last (the last of
	// -agent, or the one built).
	points []scalePoint
	// inProcess and inPod are kubectl get pods' p50 in-process and in a
	// command pod.
	inProcess, inPod time.Duration
	// levels are the concurrent commands' figures, by users at once.
	levels []level
}

// level is one row of the concurrent commands' table.
type level struct {
	users    int
	perSec   float64
	p50, p99 time.Duration
}

// The README's paragraph sits between these two lines.
const (
	readmeBegin = "<!-- make bench: begin -->"
	readmeEnd   = "<!-- make bench: end -->"
)

// paragraph is the README's performance paragraph from f; empty when the
// scale curve did not run.
func (f *figures) paragraph() string {
	if len(f.points) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured by `make bench` on %d cores against a real control plane on the same machine (a fresh agent at each size, `GOMEMLIMIT` %s as the chart sets it, Events at 5× pods, a Deployment per 10 pods):\n\n",
		runtime.NumCPU(), memLimitMiB())
	b.WriteString("| pods | ready | RSS | anonymous | change → sink p50 | CPU per 1k watch events |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range f.points {
		fmt.Fprintf(&b, "| %s | %s | %.0f MiB | %.0f MiB | %s | %s |\n", thousands(p.pods), p.ready.Round(100*time.Millisecond),
			p.rss, p.anon, p.p50.Round(time.Millisecond), p.cpuPer1k.Round(10*time.Millisecond))
	}
	first, last := f.points[0], f.points[len(f.points)-1]
	if d := float64(last.pods - first.pods); d > 0 {
		fmt.Fprintf(&b, "\nMemory grows by %.1f KiB of anonymous memory per cached pod from %s to %s pods.", (last.anon-first.anon)*1024/d, thousands(first.pods), thousands(last.pods))
	}
	if f.inProcess > 0 {
		fmt.Fprintf(&b, " `kubectl get pods` answers in %s in-process and %s in a command pod (p50).", f.inProcess.Round(time.Millisecond), f.inPod.Round(time.Millisecond))
	}
	for _, l := range f.levels {
		if l.users == 20 {
			fmt.Fprintf(&b, " Twenty users at once run %.1f `kubectl get pods -A` a second over 1,000 pods (p50 %s).", l.perSec, l.p50.Round(10*time.Millisecond))
		}
	}
	b.WriteString(" The machine, the method and the figures' history: [docs/performance.md](docs/performance.md).\n")
	return b.String()
}

// thousands writes n as "10k" when it is a round number of thousands.
func thousands(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// writeReadme replaces the text between the README's markers with text.
func writeReadme(path, text string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := bytes.Index(b, []byte(readmeBegin)), bytes.Index(b, []byte(readmeEnd))
	if begin < 0 || end < begin {
		return fmt.Errorf("%s: no %q line followed by %q to put the figures between", path, readmeBegin, readmeEnd)
	}
	var out bytes.Buffer
	out.Write(b[:begin+len(readmeBegin)])
	out.WriteString("\n" + text)
	out.Write(b[end:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
