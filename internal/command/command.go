// Package command parses the text of a chat command into argv. It is pure:
// no I/O and no shell. Words are split as a shell would split them (spaces,
// single and double quotes, chat clients' smart quotes), but nothing is
// interpreted: shell operators are refused with an error naming the token,
// so a command can never turn into a pipeline, a substitution or a redirect.
//
// The grammar, after the bot mention:
//
//	[--cluster NAME] [--filter REGEX] <executor|builtin> args... [| grep [-i] [-v] PATTERN]
//
// "| grep" is the one pipe form accepted; it becomes the output filter.
package command

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("syntax error")

// MaxLength bounds a command's text.
const MaxLength = 4096

// Error is a parse error at a position of the input (1-based column, in runes).
type Error struct {
	Column int
	Token  string
	Msg    string
}

func (e *Error) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("syntax error at column %d: %s", e.Column, e.Msg)
	}
	return "syntax error: " + e.Msg
}

// Unwrap makes errors.Is(err, ErrSyntax) true.
func (e *Error) Unwrap() error { return ErrSyntax }

// Command is one parsed command.
type Command struct {
	// Cluster is the --cluster target; empty means the channel's default cluster.
	Cluster string
	// Name is the executor or built-in, after alias expansion ("kubectl", "ping").
	Name string
	// Args is argv after Name.
	Args []string
	// Filter, when set, keeps only the output lines that match (or, with
	// InvertFilter, that do not match).
	Filter       *regexp.Regexp
	InvertFilter bool
}

// String renders the command back as text that parses to the same Command.
func (c Command) String() string {
	var words []string
	if c.Cluster != "" {
		words = append(words, "--cluster", quote(c.Cluster))
	}
	words = append(words, quote(c.Name))
	for _, a := range c.Args {
		words = append(words, quote(a))
	}
	if c.Filter != nil {
		words = append(words, "|", "grep")
		if c.InvertFilter {
			words = append(words, "-v")
		}
		words = append(words, quote(c.Filter.String()))
	}
	return strings.Join(words, " ")
}

// Argv returns Name followed by Args.
func (c Command) Argv() []string { return append([]string{c.Name}, c.Args...) }

// Aliases maps an alias to the words it expands to.
type Aliases map[string][]string

// ParseAliases splits alias expansions ("kubectl get pods") into words.
func ParseAliases(m map[string]string) (Aliases, error) {
	out := Aliases{}
	for name, text := range m {
		words, err := Split(text)
		if err != nil {
			return nil, fmt.Errorf("alias %q: %w", name, err)
		}
		if len(words) == 0 {
			return nil, fmt.Errorf("alias %q: empty expansion", name)
		}
		out[name] = words
	}
	return out, nil
}

// Parse parses text (the message without the bot mention) into a Command.
func Parse(text string, aliases Aliases) (Command, error) {
	if len(text) > MaxLength {
		return Command{}, &Error{Msg: fmt.Sprintf("the command is %d bytes long; the limit is %d", len(text), MaxLength)}
	}
	toks, err := tokenize(text)
	if err != nil {
		return Command{}, err
	}
	var c Command
	// The one accepted pipe: a trailing "| grep [-i] [-v] PATTERN".
	for i, t := range toks {
		if t.op != "|" {
			continue
		}
		if err := c.grep(toks[i+1:], t); err != nil {
			return Command{}, err
		}
		toks = toks[:i]
		break
	}
	for _, t := range toks {
		if t.op != "" {
			return Command{}, &Error{Column: t.col, Token: t.op, Msg: operatorMessage(t.op)}
		}
	}
	words := make([]token, 0, len(toks))
	words = append(words, toks...)
	// Leading kubechat flags.
	for len(words) > 0 {
		w := words[0]
		name, value, hasValue := strings.Cut(w.text, "=")
		if w.quoted || (name != "--cluster" && name != "--filter") {
			break
		}
		if !hasValue {
			if len(words) < 2 {
				return Command{}, &Error{Column: w.col, Token: name, Msg: name + " needs a value"}
			}
			value = words[1].text
			words = words[1:]
		}
		words = words[1:]
		switch name {
		case "--cluster":
			if value == "" || strings.ContainsFunc(value, unicode.IsSpace) {
				return Command{}, &Error{Column: w.col, Token: value, Msg: fmt.Sprintf("--cluster %q is not a cluster name", value)}
			}
			c.Cluster = value
		case "--filter":
			if c.Filter != nil {
				return Command{}, &Error{Column: w.col, Token: name, Msg: "give one filter: --filter or | grep, not both"}
			}
			re, err := compileFilter(value, false)
			if err != nil {
				return Command{}, &Error{Column: w.col, Token: value, Msg: err.Error()}
			}
			c.Filter = re
		}
	}
	if len(words) == 0 || words[0].text == "" {
		return Command{}, &Error{Msg: "no command given (try \"help\")"}
	}
	c.Name = words[0].text
	for _, w := range words[1:] {
		c.Args = append(c.Args, w.text)
	}
	if exp, ok := aliases[c.Name]; ok && !words[0].quoted {
		c.Name = exp[0]
		c.Args = append(append([]string{}, exp[1:]...), c.Args...)
	}
	return c, nil
}

func (c *Command) grep(rest []token, pipe token) error {
	if len(rest) == 0 || rest[0].op != "" || rest[0].text != "grep" {
		return &Error{Column: pipe.col, Token: "|", Msg: `"|" is shell syntax; the only pipe kubechat accepts is a final "| grep PATTERN"`}
	}
	if c.Filter != nil {
		return &Error{Column: pipe.col, Token: "|", Msg: "give one filter: --filter or | grep, not both"}
	}
	args := rest[1:]
	ignoreCase := false
	for len(args) > 0 && args[0].op == "" && !args[0].quoted && strings.HasPrefix(args[0].text, "-") && len(args) > 1 {
		switch args[0].text {
		case "-i":
			ignoreCase = true
		case "-v":
			c.InvertFilter = true
		case "-iv", "-vi":
			ignoreCase, c.InvertFilter = true, true
		default:
			return &Error{Column: args[0].col, Token: args[0].text, Msg: fmt.Sprintf("grep option %q is not supported (only -i and -v)", args[0].text)}
		}
		args = args[1:]
	}
	if len(args) != 1 || args[0].op != "" {
		at := pipe
		if len(args) > 1 {
			at = args[1]
		}
		return &Error{Column: at.col, Token: at.text + at.op, Msg: `"| grep" takes exactly one pattern and must end the command`}
	}
	re, err := compileFilter(args[0].text, ignoreCase)
	if err != nil {
		return &Error{Column: args[0].col, Token: args[0].text, Msg: err.Error()}
	}
	c.Filter = re
	return nil
}

func compileFilter(expr string, ignoreCase bool) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, errors.New("the filter pattern is empty")
	}
	if ignoreCase {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid filter pattern %q: %s", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

func operatorMessage(op string) string {
	switch op {
	case "$(", "`":
		return fmt.Sprintf("%q is command substitution, and kubechat runs no shell", op)
	case "${":
		return fmt.Sprintf("%q is variable expansion, and kubechat runs no shell", op)
	case ">", ">>", "<", "<<", "2>", "&>":
		return fmt.Sprintf("%q is a redirection, and kubechat runs no shell", op)
	case "|":
		return `"|" is shell syntax; the only pipe kubechat accepts is a final "| grep PATTERN"`
	default:
		return fmt.Sprintf("%q is shell syntax, and kubechat runs no shell: send one command per message", op)
	}
}

// token is a word or a shell operator found outside quotes.
type token struct {
	text   string
	op     string // non-empty for an operator
	col    int
	quoted bool // some part of the word was quoted
}

// smartQuotes maps the quotes chat clients substitute back to ASCII.
var smartQuotes = strings.NewReplacer("\u201c", `"`, "\u201d", `"`, "\u201e", `"`, "\u2018", "'", "\u2019", "'", "\u201a", "'")

// Split splits text into words, refusing shell operators. It is Parse's tokenizer.
func Split(text string) ([]string, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(toks))
	for _, t := range toks {
		if t.op != "" {
			return nil, &Error{Column: t.col, Token: t.op, Msg: operatorMessage(t.op)}
		}
		out = append(out, t.text)
	}
	return out, nil
}

func tokenize(text string) ([]token, error) {
	if !utf8.ValidString(text) {
		return nil, &Error{Msg: "the command is not valid UTF-8"}
	}
	runes := []rune(smartQuotes.Replace(text))
	var toks []token
	var cur strings.Builder
	inWord, quoted, start := false, false, 0
	flush := func() {
		if inWord {
			toks = append(toks, token{text: cur.String(), col: start + 1, quoted: quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	begin := func(i int) {
		if !inWord {
			inWord, start = true, i
		}
	}
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case unicode.IsSpace(r):
			flush()
		case r == '\'' || r == '"':
			begin(i)
			quoted = true
			j := i + 1
			for j < len(runes) && runes[j] != r {
				if r == '"' && (runes[j] == '`' || (runes[j] == '$' && j+1 < len(runes) && (runes[j+1] == '(' || runes[j+1] == '{'))) {
					// Inside double quotes a shell would still substitute: refuse it.
					op := string(runes[j])
					if op == "$" {
						op += string(runes[j+1])
					}
					return nil, &Error{Column: j + 1, Token: op, Msg: operatorMessage(op)}
				}
				j++
			}
			if j == len(runes) {
				return nil, &Error{Column: i + 1, Token: string(r), Msg: fmt.Sprintf("the quote %c opened here is never closed", r)}
			}
			cur.WriteString(string(runes[i+1 : j]))
			i = j
		case r == '\\':
			// No escapes: a backslash is an ordinary character.
			begin(i)
			cur.WriteRune(r)
		default:
			if op := operatorAt(runes, i); op != "" {
				flush()
				toks = append(toks, token{op: op, col: i + 1})
				i += utf8.RuneCountInString(op) - 1
				continue
			}
			begin(i)
			cur.WriteRune(r)
		}
	}
	flush()
	return toks, nil
}

// operatorAt returns the shell operator starting at runes[i], if any.
func operatorAt(runes []rune, i int) string {
	next := func(k int) rune {
		if i+k < len(runes) {
			return runes[i+k]
		}
		return 0
	}
	switch r := runes[i]; r {
	case ';', '`':
		return string(r)
	case '&':
		if n := next(1); n == '&' || n == '>' {
			return string(r) + string(n)
		}
		return "&"
	case '|':
		if next(1) == '|' {
			return "||"
		}
		return "|"
	case '>', '<':
		if next(1) == r {
			return string(r) + string(r)
		}
		return string(r)
	case '$':
		if n := next(1); n == '(' || n == '{' {
			return "$" + string(n)
		}
	case '2':
		if next(1) == '>' && (i == 0 || unicode.IsSpace(runes[i-1])) {
			return "2>"
		}
	}
	return ""
}

// quote renders a word so that Split returns it unchanged.
func quote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`'"`+";&|<>$`\\", r) ||
			r == '\u201c' || r == '\u201d' || r == '\u201e' || r == '\u2018' || r == '\u2019' || r == '\u201a'
	}) {
		return s
	}
	if !strings.ContainsRune(s, '\'') {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}
