// Package llm talks to a language model through any OpenAI-compatible
// Chat Completions endpoint (OpenAI, Azure OpenAI's v1 endpoint, Ollama,
// vLLM, LM Studio), with the official openai-go client: streaming, function
// calling, request timeouts, and retries of 429 and 5xx answers that
// honour Retry-After (openai-go's own retry loop).
//
// Who sets timeouts: Settings.Timeout bounds each request, retries
// included; the caller's context bounds the whole answer. Complete blocks
// until the model's turn is over.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/kubechat/kubechat/internal/config"
)

// Defaults of Settings.
const (
	DefaultBaseURL       = "https://api.openai.com/v1"
	DefaultTimeout       = 60 * time.Second
	DefaultRetries       = 2
	DefaultMaxRetryDelay = 30 * time.Second
)

// Settings are a provider's: where it is, which model, and the key.
type Settings struct {
	// BaseURL is the API's base URL (default https://api.openai.com/v1):
	// an Azure OpenAI resource's https://<resource>.openai.azure.com/openai/v1,
	// or a self-hosted server's, such as Ollama's http://ollama:11434/v1.
	BaseURL string `yaml:"baseURL"`
	// Model is the model (or Azure deployment) name. Required.
	Model string `yaml:"model"`
	// APIKey is the key, from a Secret; self-hosted servers may need none.
	APIKey *config.Secret `yaml:"apiKey"`
	// APIKeyHeader is where the key goes: Authorization (default, as
	// "Bearer <key>") or api-key (Azure OpenAI keys).
	APIKeyHeader string `yaml:"apiKeyHeader" jsonschema:"enum=Authorization,enum=api-key"`
	// Timeout bounds one request with its retries (default 60s).
	Timeout config.Duration `yaml:"timeout"`
	// Retries of a request that got 429, 5xx or no answer (default 2);
	// each waits as Retry-After says, up to MaxRetryDelay.
	Retries *int `yaml:"retries" jsonschema:"minimum=0,maximum=10"`
	// MaxRetryDelay is the longest Retry-After honoured (default 30s);
	// a longer one fails the request.
	MaxRetryDelay config.Duration `yaml:"maxRetryDelay"`
}

// Check validates s; each error names its field under prefix.
func (s *Settings) Check(prefix string) error {
	var errs []error
	if s.BaseURL != "" {
		u, err := url.Parse(s.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%sbaseURL: %q is not an http(s) URL", prefix, s.BaseURL))
		}
	}
	if strings.TrimSpace(s.Model) == "" {
		errs = append(errs, fmt.Errorf("%smodel: required (the model, or Azure deployment, to ask)", prefix))
	}
	switch s.APIKeyHeader {
	case "", "Authorization", "api-key":
	default:
		errs = append(errs, fmt.Errorf("%sapiKeyHeader: %q is not Authorization or api-key", prefix, s.APIKeyHeader))
	}
	if s.Retries != nil && (*s.Retries < 0 || *s.Retries > 10) {
		errs = append(errs, fmt.Errorf("%sretries: must be 0 to 10, got %d", prefix, *s.Retries))
	}
	return errors.Join(errs...)
}

// Client asks one model.
type Client struct {
	c     openai.Client
	model string
}

// New builds a client; it does not dial out. hc may be nil.
func New(s Settings, hc *http.Client) *Client {
	base := s.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	retries := DefaultRetries
	if s.Retries != nil {
		retries = *s.Retries
	}
	maxDelay := s.MaxRetryDelay.D()
	if maxDelay <= 0 {
		maxDelay = DefaultMaxRetryDelay
	}
	if hc == nil {
		hc = &http.Client{}
	}
	opts := []option.RequestOption{
		option.WithBaseURL(base), option.WithHTTPClient(hc),
		option.WithRequestTimeout(timeout), option.WithMaxRetries(retries), option.WithMaxRetryDelay(maxDelay),
	}
	key := ""
	if s.APIKey != nil {
		key = s.APIKey.Reveal()
	}
	switch {
	case s.APIKeyHeader == "api-key":
		opts = append(opts, option.WithAPIKey(""), option.WithHeaderDel("Authorization"), option.WithHeader("api-key", key))
	case key != "":
		opts = append(opts, option.WithAPIKey(key))
	default:
		// A server that takes no key; openai-go would read $OPENAI_API_KEY.
		opts = append(opts, option.WithAPIKey(""), option.WithHeaderDel("Authorization"))
	}
	return &Client{c: openai.NewClient(opts...), model: s.Model}
}

// Model is the model the client asks.
func (c *Client) Model() string { return c.model }

// Turn is one turn of the model: its text, or the tools it calls.
type Turn struct {
	Content   string
	ToolCalls []ToolCall
	// Message is the turn as the next request's history holds it.
	Message openai.ChatCompletionMessageParamUnion
	// FinishReason is the model's: stop, tool_calls, length.
	FinishReason                   string
	PromptTokens, CompletionTokens int64
	// Estimated is set when the server counted no tokens and the counts
	// are estimates (4 bytes a token).
	Estimated bool
}

// ToolCall is a function call of the model; Arguments is its JSON.
type ToolCall struct {
	ID, Name, Arguments string
}

// ErrMalformed is wrapped by the error of a reply that is not a Chat
// Completions stream.
var ErrMalformed = errors.New("malformed reply from the model")

// Complete streams one turn. onText gets the text as it arrives. A
// maxTokens above zero caps the completion.
func (c *Client) Complete(ctx context.Context, msgs []openai.ChatCompletionMessageParamUnion, tools []openai.ChatCompletionToolUnionParam,
	maxTokens int64, onText func(delta string),
) (Turn, error) {
	params := openai.ChatCompletionNewParams{
		Model:         c.model,
		Messages:      msgs,
		Tools:         tools,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if maxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(maxTokens)
	}
	stream := c.c.Chat.Completions.NewStreaming(ctx, params)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			return Turn{}, fmt.Errorf("%w: a chunk does not continue the stream", ErrMalformed)
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.Content != "" && onText != nil {
				onText(ch.Delta.Content)
			}
		}
	}
	if err := stream.Err(); err != nil {
		return Turn{}, describe(err)
	}
	if len(acc.Choices) == 0 {
		return Turn{}, fmt.Errorf("%w: no choices", ErrMalformed)
	}
	msg := acc.Choices[0].Message
	t := Turn{Content: msg.Content, Message: msg.ToParam(), FinishReason: string(acc.Choices[0].FinishReason),
		PromptTokens: acc.Usage.PromptTokens, CompletionTokens: acc.Usage.CompletionTokens}
	for _, tc := range msg.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			return Turn{}, fmt.Errorf("%w: a %q tool call (only functions are offered)", ErrMalformed, tc.Type)
		}
		t.ToolCalls = append(t.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	if t.PromptTokens == 0 && t.CompletionTokens == 0 {
		t.Estimated = true
		for _, m := range msgs {
			b, _ := m.MarshalJSON()
			t.PromptTokens += int64(len(b)/4 + 1)
		}
		t.CompletionTokens = int64(len(t.Content)/4 + 1)
		for _, tc := range t.ToolCalls {
			t.CompletionTokens += int64((len(tc.Name)+len(tc.Arguments))/4 + 1)
		}
	}
	return t, nil
}

// describe turns openai-go's errors into ones that name the status and
// never carry the request (its headers hold the key).
func describe(err error) error {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		msg := apiErr.Message
		if msg == "" {
			msg = http.StatusText(apiErr.StatusCode)
		}
		return fmt.Errorf("the model's server answered %d: %s", apiErr.StatusCode, msg)
	}
	var netErr *url.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &netErr):
		return fmt.Errorf("cannot reach the model's server: %v", netErr.Err)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}
