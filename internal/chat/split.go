package chat

import (
	"strings"
	"unicode/utf8"
)

// minSplitLimit is the smallest piece Split makes: room for a fence pair and some text.
const minSplitLimit = 32

// Split cuts markdown text into pieces of at most limit characters (runes),
// so that each fits a platform's message limit. It cuts at line ends where
// it can, then at spaces, and inside a long word only as a last resort.
// Code fences (lines starting with ```) stay balanced: a piece that ends
// inside a code block closes it, and the next piece reopens it with the
// same opening line, so every piece renders on its own. Nothing is dropped:
// joining the pieces, without the fences Split added, gives back text.
// Limits below 32 are raised to 32.
func Split(text string, limit int) []string {
	limit = max(limit, minSplitLimit)
	if utf8.RuneCountInString(text) <= limit {
		return []string{text}
	}
	var (
		pieces []string
		cur    strings.Builder
		curLen int
		open   string // the opening fence line of the code block we are in, or ""
		// reopen is the fence that starts the current piece, added by Split.
		reopen string
	)
	closing := func() int {
		if open == "" {
			return 0
		}
		return len("\n```")
	}
	flush := func() {
		s := cur.String()
		if open != "" {
			s = closeFence(s)
		}
		pieces = append(pieces, s)
		cur.Reset()
		curLen = 0
		reopen = ""
		if open != "" {
			reopen = open + "\n"
			if utf8.RuneCountInString(reopen) > limit/4 {
				reopen = "```\n" // a long info string would crowd out the text
			}
			cur.WriteString(reopen)
			curLen = utf8.RuneCountInString(reopen)
		}
	}
	// room is what the current piece can still take, keeping space for a closing fence.
	room := func() int { return limit - curLen - closing() }

	lines := strings.SplitAfter(text, "\n")
	for _, line := range lines {
		if line == "" {
			continue
		}
		body := strings.TrimSuffix(line, "\n")
		n := utf8.RuneCountInString(line)
		isFence := strings.HasPrefix(strings.TrimLeft(body, " "), "```") && n <= limit/2
		// A fence line changes what the piece must close; count it against the new state.
		if isFence {
			need := n
			if open == "" {
				need += len("\n```") // opening: we may have to close it in this piece
			}
			if need > room() && curLen > utf8.RuneCountInString(reopen) {
				flush()
			}
			cur.WriteString(line)
			curLen += n
			if open == "" {
				open = body
			} else {
				open = ""
			}
			continue
		}
		if n <= room() {
			cur.WriteString(line)
			curLen += n
			continue
		}
		if curLen > utf8.RuneCountInString(reopen) {
			flush()
		}
		// The line alone may still be too long: cut it at spaces, then anywhere.
		for n > room() {
			head, tail := cutLine(line, room())
			h := utf8.RuneCountInString(head)
			cur.WriteString(head)
			curLen += h
			flush()
			line, n = tail, n-h
		}
		cur.WriteString(line)
		curLen += n
	}
	if curLen > utf8.RuneCountInString(reopen) || len(pieces) == 0 {
		s := cur.String()
		if open != "" && reopen != "" {
			s = closeFence(s)
		}
		pieces = append(pieces, s)
	}
	return pieces
}

// closeFence ends s with a closing fence on its own line.
func closeFence(s string) string {
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s + "```"
}

// cutLine splits s after at most n runes, at the last space if there is one
// in the second half, so words stay whole where they can.
func cutLine(s string, n int) (string, string) {
	n = max(n, 1)
	i, count := 0, 0
	for i < len(s) && count < n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	if sp := strings.LastIndexByte(s[:i], ' '); sp > i/2 {
		i = sp + 1
	}
	return s[:i], s[i:]
}
