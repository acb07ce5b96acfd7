package command

import (
	"strings"
	"testing"
)

// FuzzParse proves that Parse never panics, and that whatever it accepts
// had no shell operator outside quotes, apart from the one final "| grep".
func FuzzParse(f *testing.F) {
	for _, s := range InjectionCorpus {
		f.Add(s)
	}
	for _, s := range []string{"kubectl get pods | grep -i web", "--cluster a --filter b k get po", `a "b c" 'd' “e”`, "x\\y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(in, aliases)
		if err != nil {
			return
		}
		outside := unquoted(smartQuotes.Replace(in))
		if c.Filter != nil && strings.Contains(outside, "|") {
			outside = outside[:strings.Index(outside, "|")]
		}
		for _, op := range []string{";", "&", "|", ">", "<", "`", "$(", "${"} {
			if strings.Contains(outside, op) {
				t.Fatalf("accepted %q with %q outside quotes: %#v", in, op, c)
			}
		}
		if c.Name == "" {
			t.Fatalf("accepted %q without a command name", in)
		}
	})
}

// unquoted returns the parts of s outside single or double quotes.
func unquoted(s string) string {
	var b strings.Builder
	var q rune
	for _, r := range s {
		switch {
		case q != 0 && r == q:
			q = 0
		case q != 0:
		case r == '\'' || r == '"':
			q = r
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
