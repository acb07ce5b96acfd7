package llm_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/llm"
	"github.com/kubechat/kubechat/internal/llm/llmtest"
)

func client(t *testing.T, srv *llmtest.Server, retries int) *llm.Client {
	t.Helper()
	key := config.NewSecret("sk-secret-key", "test")
	return llm.New(llm.Settings{BaseURL: srv.BaseURL(), Model: "m", APIKey: &key, Retries: &retries}, nil)
}

var hello = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}

func TestStreamsTextAndUsage(t *testing.T) {
	srv := llmtest.New(t)
	srv.Push(llmtest.Reply{Text: "Hello there, how are you?", PromptTokens: 7, CompletionTokens: 6})
	var deltas []string
	turn, err := client(t, srv, 0).Complete(t.Context(), hello, nil, 100, func(d string) { deltas = append(deltas, d) })
	require.NoError(t, err)
	require.Equal(t, "Hello there, how are you?", turn.Content)
	require.Greater(t, len(deltas), 1, "the text arrives in pieces")
	require.Equal(t, turn.Content, strings.Join(deltas, ""))
	require.EqualValues(t, 7, turn.PromptTokens)
	require.EqualValues(t, 6, turn.CompletionTokens)
	require.False(t, turn.Estimated)
	require.Equal(t, "stop", turn.FinishReason)
	req := srv.Requests()[0]
	require.True(t, req.Stream)
	require.Contains(t, req.Body, `"max_completion_tokens":100`)
	require.Contains(t, req.Body, `"include_usage":true`)
	require.Equal(t, "Bearer sk-secret-key", req.Header.Get("Authorization"))
}

func TestToolCallsArriveWhole(t *testing.T) {
	srv := llmtest.New(t)
	srv.Push(llmtest.Reply{ToolCalls: []llmtest.Call{
		{Name: "kubectl_get", Arguments: `{"resource":"pods","namespace":"shop"}`},
		{Name: "kubectl_logs", Arguments: `{"pod":"web-1","namespace":"shop"}`},
	}})
	turn, err := client(t, srv, 0).Complete(t.Context(), hello, nil, 0, nil)
	require.NoError(t, err)
	require.Equal(t, []llm.ToolCall{
		{ID: "call_0", Name: "kubectl_get", Arguments: `{"resource":"pods","namespace":"shop"}`},
		{ID: "call_1", Name: "kubectl_logs", Arguments: `{"pod":"web-1","namespace":"shop"}`},
	}, turn.ToolCalls)
	require.Equal(t, "tool_calls", turn.FinishReason)
	require.True(t, turn.Estimated, "no usage reported: the counts are estimates")
	require.Positive(t, turn.PromptTokens)
	b, err := turn.Message.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(b), `"tool_calls"`, "the turn goes back into the history with its calls")
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	srv := llmtest.New(t)
	srv.Push(llmtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "0.01"}, llmtest.Reply{Status: http.StatusBadGateway}, llmtest.Reply{Text: "ok"})
	turn, err := client(t, srv, 2).Complete(t.Context(), hello, nil, 0, nil)
	require.NoError(t, err)
	require.Equal(t, "ok", turn.Content)
	require.Len(t, srv.Requests(), 3)
}

func TestErrorsNameTheStatusAndHideTheKey(t *testing.T) {
	srv := llmtest.New(t)
	srv.Push(llmtest.Reply{Status: http.StatusServiceUnavailable}, llmtest.Reply{Status: http.StatusServiceUnavailable})
	_, err := client(t, srv, 1).Complete(t.Context(), hello, nil, 0, nil)
	require.ErrorContains(t, err, "answered 503")
	require.NotContains(t, err.Error(), "sk-secret-key")
	require.Len(t, srv.Requests(), 2, "one retry")

	srv.Key = "another-key"
	_, err = client(t, srv, 1).Complete(t.Context(), hello, nil, 0, nil)
	require.ErrorContains(t, err, "answered 401")
	require.NotContains(t, err.Error(), "sk-secret-key")
}

func TestMalformedReplies(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":   "data: {this is not json\n\n",
		"no choices": "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[]}\n\ndata: [DONE]\n\n",
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			srv := llmtest.New(t)
			if raw == "" {
				srv.Push(llmtest.Reply{Raw: "\n"})
			} else {
				srv.Push(llmtest.Reply{Raw: raw})
			}
			_, err := client(t, srv, 0).Complete(t.Context(), hello, nil, 0, nil)
			require.ErrorIs(t, err, llm.ErrMalformed)
		})
	}
}

func TestAzureKeyHeader(t *testing.T) {
	srv := llmtest.New(t)
	srv.Key = "azure-key"
	srv.Push(llmtest.Reply{Text: "ok"})
	key := config.NewSecret("azure-key", "test")
	_, err := llm.New(llm.Settings{BaseURL: srv.BaseURL(), Model: "deployment", APIKey: &key, APIKeyHeader: "api-key"}, nil).
		Complete(t.Context(), hello, nil, 0, nil)
	require.NoError(t, err)
	h := srv.Requests()[0].Header
	require.Equal(t, "azure-key", h.Get("api-key"))
	require.Empty(t, h.Get("Authorization"))
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	n := 11
	err := (&llm.Settings{BaseURL: "ftp://x", APIKeyHeader: "X-Key", Retries: &n}).Check("settings.provider.")
	for _, want := range []string{"settings.provider.baseURL", "settings.provider.model", "settings.provider.apiKeyHeader", "settings.provider.retries"} {
		require.ErrorContains(t, err, want)
	}
}
