package chat

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// checkSplit asserts Split's promises for one input: pieces within the
// limit, fences balanced in each piece when they were in the input, and
// no character lost or added apart from fences and line breaks.
func checkSplit(t testing.TB, text string, limit int) []string {
	t.Helper()
	pieces := Split(text, limit)
	require.NotEmpty(t, pieces)
	eff := max(limit, minSplitLimit)
	// Only fence lines Split can keep whole count: backticks inside a line
	// may start a line after a hard cut, and a fence line longer than half
	// a piece is cut like text.
	balanced := fenceCount(text, eff)%2 == 0 && fenceCount(text, eff) == strings.Count(text, "```")
	for i, p := range pieces {
		if len(pieces) > 1 {
			require.LessOrEqual(t, utf8.RuneCountInString(p), eff, "piece %d of %d is too long: %q", i, len(pieces), p)
		}
		if balanced {
			require.Zero(t, fenceCount(p, eff)%2, "piece %d has an unclosed fence: %q", i, p)
		}
	}
	require.Equal(t, withoutFences(text), withoutFences(strings.Join(pieces, "")), "content changed")
	return pieces
}

func fenceCount(s string, limit int) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") && utf8.RuneCountInString(line) <= limit/2 {
			n++
		}
	}
	return n
}

// withoutFences drops fence lines and line breaks, which Split may add.
func withoutFences(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			continue
		}
		b.WriteString(strings.TrimSuffix(line, "\n"))
	}
	return b.String()
}

func TestSplitShortTextIsOnePiece(t *testing.T) {
	require.Equal(t, []string{"hello"}, Split("hello", 100))
	require.Equal(t, []string{""}, Split("", 100))
}

func TestSplitCutsAtLineEnds(t *testing.T) {
	text := strings.Repeat("0123456789\n", 10) // 110 characters
	pieces := checkSplit(t, text, 50)
	for _, p := range pieces[:len(pieces)-1] {
		require.True(t, strings.HasSuffix(p, "\n"), "cut inside a line: %q", p)
	}
}

func TestSplitClosesAndReopensFences(t *testing.T) {
	var b strings.Builder
	b.WriteString("Output:\n```yaml\n")
	for i := range 40 {
		fmt.Fprintf(&b, "key%d: value%d\n", i, i)
	}
	b.WriteString("```\nDone.\n")
	pieces := checkSplit(t, b.String(), 120)
	require.Greater(t, len(pieces), 3)
	for i, p := range pieces {
		if i > 0 && i < len(pieces)-1 {
			require.True(t, strings.HasPrefix(p, "```yaml\n"), "piece %d does not reopen the block: %q", i, p)
			require.True(t, strings.HasSuffix(p, "\n```"), "piece %d does not close the block: %q", i, p)
		}
	}
	require.True(t, strings.HasSuffix(pieces[len(pieces)-1], "Done.\n"))
}

func TestSplitLongLinesAtSpacesThenAnywhere(t *testing.T) {
	words := strings.Repeat("word ", 100)
	for _, p := range checkSplit(t, words, 64)[:1] {
		require.True(t, strings.HasSuffix(p, " "), "cut inside a word: %q", p)
	}
	checkSplit(t, strings.Repeat("x", 1000), 64)
	checkSplit(t, strings.Repeat("é€😀", 300), 50) // never inside a rune
}

func TestSplitLongLineInsideFence(t *testing.T) {
	checkSplit(t, "```\n"+strings.Repeat("a", 500)+"\n```\n", 60)
}

func TestSplitRaisesTinyLimits(t *testing.T) {
	for _, p := range checkSplit(t, strings.Repeat("abc ", 40), 0) {
		require.LessOrEqual(t, utf8.RuneCountInString(p), minSplitLimit)
	}
}

func TestSplitUnclosedFenceInInput(t *testing.T) {
	checkSplit(t, "```\n"+strings.Repeat("line\n", 50), 40)
}

func TestSplitLongInfoString(t *testing.T) {
	checkSplit(t, "```"+strings.Repeat("i", 12)+"\n"+strings.Repeat("line\n", 50)+"```\n", 40)
}

func FuzzSplit(f *testing.F) {
	f.Add("```\nabc\n```\n", 40)
	f.Add(strings.Repeat("a b\n", 50), 33)
	f.Add("x```y\n```go\n"+strings.Repeat("z", 90), 32)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if !utf8.ValidString(text) || limit > 10000 {
			t.Skip()
		}
		checkSplit(t, text, limit)
	})
}

func BenchmarkSplitOneLongLine(b *testing.B) {
	text := strings.Repeat("x", 1<<20) // a 1 MiB line, as a command's output cap allows
	for b.Loop() {
		Split(text, 3000)
	}
}
