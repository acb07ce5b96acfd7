package ai

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/llm"
)

// Settings configure the ai executor.
type Settings struct {
	// Provider is the OpenAI-compatible Chat Completions endpoint.
	Provider llm.Settings `yaml:"provider"`
	Budgets  Budgets      `yaml:"budgets"`
	Memory   Memory       `yaml:"memory"`
	Privacy  Privacy      `yaml:"privacy"`
}

// Budgets bound what one question, and one day, may cost. A question that
// reaches one ends with what was found so far, and says which.
type Budgets struct {
	// ToolCalls per question (default 8).
	ToolCalls int `yaml:"toolCalls" jsonschema:"minimum=0"`
	// TokensPerQuestion, prompt and completion together (default 60000).
	TokensPerQuestion int64 `yaml:"tokensPerQuestion" jsonschema:"minimum=0"`
	// TokensPerDay for the executor, across every channel (default
	// 1000000; the day is UTC, and the count restarts with the agent).
	TokensPerDay int64 `yaml:"tokensPerDay" jsonschema:"minimum=0"`
	// Time a question may take, tool calls included (default 2m).
	Time config.Duration `yaml:"time"`
}

// Memory bounds what is remembered of a thread's conversation, so that a
// follow-up in the thread continues it: its questions and answers (never
// tool output), oldest forgotten first.
type Memory struct {
	// Entries are the questions and answers remembered per thread (default 10).
	Entries int `yaml:"entries" jsonschema:"minimum=0"`
	// Bytes they may hold per thread together (default 16384).
	Bytes int `yaml:"bytes" jsonschema:"minimum=0"`
	// Threads remembered at once (default 200).
	Threads int `yaml:"threads" jsonschema:"minimum=0"`
}

// Privacy says what may leave the cluster for the provider.
type Privacy struct {
	// SendLogs lets the model read container logs (default false: the
	// logs tool is not offered).
	SendLogs bool `yaml:"sendLogs"`
	// LogLines caps a logs call's tail (default 100).
	LogLines int `yaml:"logLines" jsonschema:"minimum=0"`
	// NeverSend are namespaces nothing is sent from: tool calls in them
	// are refused, and their alerts get no Ask AI button.
	NeverSend []string `yaml:"neverSend"`
	// Mask are regular expressions whose matches are replaced by *** in
	// everything sent, besides the values of Secrets and the built-in
	// patterns (e-mail addresses, bearer tokens, JWTs, private keys).
	Mask []string `yaml:"mask"`
	// MaxToolOutputBytes caps what one tool call sends (default 16384).
	MaxToolOutputBytes int `yaml:"maxToolOutputBytes" jsonschema:"minimum=0"`
}

// builtinMasks are always applied to what is sent.
var builtinMasks = []string{
	`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`,                             // e-mail addresses
	`(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}`,                                        // bearer tokens
	`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`,                 // JWTs
	`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----`, // PEM keys
	`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,                                              // AWS access key ids
}

func (s *Settings) withDefaults() {
	orDefault(&s.Budgets.ToolCalls, 8)
	orDefault(&s.Budgets.TokensPerQuestion, 60000)
	orDefault(&s.Budgets.TokensPerDay, 1000000)
	orDefault(&s.Budgets.Time, config.Duration(2*time.Minute))
	orDefault(&s.Memory.Entries, 10)
	orDefault(&s.Memory.Bytes, 16384)
	orDefault(&s.Memory.Threads, 200)
	orDefault(&s.Privacy.LogLines, 100)
	orDefault(&s.Privacy.MaxToolOutputBytes, 16384)
}

// orDefault sets *v to d when it is unset (zero).
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// check validates s and compiles its patterns.
func (s *Settings) check() ([]*regexp.Regexp, error) {
	errs := []error{s.Provider.Check("settings.provider.")}
	if s.Budgets.ToolCalls < 0 {
		errs = append(errs, fmt.Errorf("settings.budgets.toolCalls: must be positive, got %d", s.Budgets.ToolCalls))
	}
	if s.Budgets.TokensPerQuestion < 0 || s.Budgets.TokensPerDay < 0 {
		errs = append(errs, fmt.Errorf("settings.budgets: token budgets must be positive"))
	}
	if s.Memory.Entries < 0 || s.Memory.Bytes < 0 || s.Memory.Threads < 0 {
		errs = append(errs, fmt.Errorf("settings.memory: bounds must be positive"))
	}
	if s.Privacy.LogLines < 0 || s.Privacy.MaxToolOutputBytes < 0 {
		errs = append(errs, fmt.Errorf("settings.privacy: logLines and maxToolOutputBytes must be positive"))
	}
	for i, ns := range s.Privacy.NeverSend {
		if len(validation.IsDNS1123Label(ns)) > 0 {
			errs = append(errs, fmt.Errorf("settings.privacy.neverSend[%d]: %q is not a namespace name", i, ns))
		}
	}
	var res []*regexp.Regexp
	for _, p := range builtinMasks {
		res = append(res, regexp.MustCompile(p))
	}
	for i, p := range s.Privacy.Mask {
		re, err := regexp.Compile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("settings.privacy.mask[%d]: %w", i, err))
			continue
		}
		if re.MatchString("") {
			errs = append(errs, fmt.Errorf("settings.privacy.mask[%d]: %q matches the empty string", i, p))
			continue
		}
		res = append(res, re)
	}
	return res, errors.Join(errs...)
}
