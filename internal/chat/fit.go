package chat

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits are one platform's size limits, in characters (runes).
type Limits struct {
	// Block is the most one text or code block may hold (Slack: 3000 per
	// section; Discord: 2000 per message). Required.
	Block int
	// Message is the most all blocks of one message may hold together
	// (default: Block). Output beyond it continues in further messages.
	Message int
	// Upload is the code length past which the whole output is uploaded as
	// a file with a short preview, instead of being split into messages.
	// Zero means the platform cannot upload: long output is always split.
	Upload int
}

// File is a text file to upload along with a message.
type File struct {
	Name    string
	Title   string
	Content string
}

// previewLines is how many lines of an uploaded output the message shows.
const previewLines = 15

// Fit lays m out within l, so that nothing is silently cut: it returns the
// messages to post in order and, when output is longer than l.Upload, the
// file that carries it in full. Every code block and text longer than
// l.Block is split with Split, fences kept balanced. The first message is
// m itself; every later one belongs in the first one's thread (or in
// m.Thread) and is numbered in its Context. A file belongs there too.
func Fit(m Message, l Limits) ([]Message, *File) {
	if l.Block <= 0 {
		l.Block = 3000
	}
	if l.Message < l.Block {
		l.Message = l.Block
	}
	var file *File
	if l.Upload > 0 {
		if code := codeLength(m); code > l.Upload {
			m, file = withUpload(m, l)
		}
	}
	// Split long blocks into several sections, then pack sections into messages.
	var sections []Section
	for _, s := range m.Sections {
		sections = append(sections, splitSection(s, l.Block)...)
	}
	first := m
	first.Sections = nil
	out := []Message{first}
	used := utf8.RuneCountInString(m.Title) + utf8.RuneCountInString(m.Context)
	for _, s := range sections {
		n := sectionLength(s)
		cur := &out[len(out)-1]
		if len(cur.Sections) > 0 && used+n > l.Message {
			out = append(out, Message{Level: m.Level, Thread: m.Thread})
			cur = &out[len(out)-1]
			used = 0
		}
		cur.Sections = append(cur.Sections, s)
		used += n
	}
	if len(out) > 1 {
		for i := range out {
			part := fmt.Sprintf("part %d/%d", i+1, len(out))
			if out[i].Context == "" {
				out[i].Context = part
			} else {
				out[i].Context += " · " + part
			}
		}
	}
	return out, file
}

// codeLength is the length of all code blocks of m.
func codeLength(m Message) int {
	n := 0
	for _, s := range m.Sections {
		n += utf8.RuneCountInString(s.Code)
	}
	return n
}

func sectionLength(s Section) int {
	n := utf8.RuneCountInString(s.Header) + utf8.RuneCountInString(s.Text) + utf8.RuneCountInString(s.Code)
	for _, f := range s.Fields {
		n += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
	}
	return n
}

// withUpload moves m's code into one file and leaves a preview of each block.
func withUpload(m Message, l Limits) (Message, *File) {
	var all strings.Builder
	sections := make([]Section, len(m.Sections))
	lines := 0
	for i, s := range m.Sections {
		sections[i] = s
		if s.Code == "" {
			continue
		}
		if all.Len() > 0 {
			all.WriteString("\n")
		}
		all.WriteString(s.Code)
		lines += strings.Count(strings.TrimRight(s.Code, "\n"), "\n") + 1
		sections[i].Code = preview(s.Code, l.Block/2)
	}
	content := all.String()
	name := "output.txt"
	note := Section{Text: fmt.Sprintf("Showing the first lines: the full output (%d lines, %s) is attached as %s.",
		lines, byteSize(len(content)), name)}
	m.Sections = append(sections, note)
	title := m.Title
	if title == "" {
		title = "output"
	}
	return m, &File{Name: name, Title: title, Content: content}
}

// preview is the first lines of code, at most limit characters.
func preview(code string, limit int) string {
	lines := strings.SplitAfter(code, "\n")
	var b strings.Builder
	for i, line := range lines {
		if i == previewLines || utf8.RuneCountInString(b.String())+utf8.RuneCountInString(line) > limit {
			break
		}
		b.WriteString(line)
	}
	if b.Len() == 0 { // one very long first line
		head, _ := cutLine(code, limit)
		b.WriteString(head)
	}
	return strings.TrimRight(b.String(), "\n") + "\n…"
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// splitSection cuts one section whose text or code is longer than block
// into several; the header and fields stay with the first part.
func splitSection(s Section, block int) []Section {
	if utf8.RuneCountInString(s.Text) <= block && utf8.RuneCountInString(s.Code) <= block {
		return []Section{s}
	}
	out := []Section{{Header: s.Header, Fields: s.Fields}}
	for _, t := range Split(s.Text, block) {
		if t != "" {
			out = append(out, Section{Text: t})
		}
	}
	// Code is rendered inside a fence; leave room for it.
	for _, c := range Split(s.Code, block-len("```\n\n```")) {
		if c != "" {
			out = append(out, Section{Code: c})
		}
	}
	if len(out[0].Fields) == 0 && out[0].Header == "" {
		out = out[1:]
	} else if len(out) > 1 {
		// Keep the header and fields on the first text or code part.
		out[1].Header, out[1].Fields = out[0].Header, out[0].Fields
		out = out[1:]
	}
	out[len(out)-1].Buttons = s.Buttons
	out[len(out)-1].Selects = s.Selects
	return out
}

// Cut shortens s to at most n runes, ending it with "…" when it cut: a
// last guard for the parts Fit does not size (titles, labels, a sink's
// summary).
func Cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
