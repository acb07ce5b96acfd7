// Package llmtest is a loopback fake of the OpenAI Chat Completions API
// (POST /v1/chat/completions), shaped after its documented wire format,
// so that openai-go runs unchanged against it: streamed replies as
// server-sent events (chat.completion.chunk objects, then a usage chunk,
// then "data: [DONE]"), function tool calls streamed in fragments, error
// answers with a status and Retry-After, and malformed replies. It records
// every request body, for assertions on what left the cluster.
// https://platform.openai.com/docs/api-reference/chat/create-streaming
package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Reply is one scripted answer.
type Reply struct {
	// Text is streamed as content, a few runes a chunk.
	Text string
	// ToolCalls are streamed as function calls, arguments in fragments.
	ToolCalls []Call
	// Status, when set, answers with that status and an error body
	// instead (with Retry-After when set: "1", "0.05").
	Status     int
	RetryAfter string
	// Raw, when set, is written as the whole body of a 200 event stream
	// (a malformed reply).
	Raw string
	// PromptTokens and CompletionTokens are reported in the usage chunk
	// (both zero: a server that reports no usage).
	PromptTokens, CompletionTokens int64
	// Hold, when set, is waited on after the first content chunk: a test
	// sees the partial answer before the rest arrives.
	Hold <-chan struct{}
}

// Call is a function call.
type Call struct {
	Name      string
	Arguments string
}

// Request is one request the fake received.
type Request struct {
	Header http.Header
	Body   string
	// Messages and Tools are Body decoded: the history sent, and the
	// names of the functions offered.
	Messages []Message
	Tools    []string
	Stream   bool
}

// Message is one message of a request's history.
type Message struct {
	Role       string `json:"role"`
	Content    any    `json:"content"`
	ToolCallID string `json:"tool_call_id"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// Text is the message's content as text.
func (m Message) Text() string {
	switch c := m.Content.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			if pm, ok := p.(map[string]any); ok {
				if s, ok := pm["text"].(string); ok {
					b.WriteString(s)
				}
			}
		}
		return b.String()
	}
	return ""
}

// Server is the fake API. Its base URL for openai-go is URL + "/v1".
type Server struct {
	*httptest.Server
	// Key is the API key requests must carry as a bearer token (or in
	// api-key); empty takes any.
	Key string

	mu       sync.Mutex
	requests []Request
	replies  []Reply
	next     func(n int, req Request) Reply
}

// New starts a fake on loopback; it stops with t.
func New(t testing.TB) *Server {
	s := &Server{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// BaseURL is what a client's base URL is set to.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// Push queues replies, answered in order.
func (s *Server) Push(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = append(s.replies, r...)
}

// Respond answers every request that finds no queued reply with f, given
// the request's number (from 0) and the request.
func (s *Server) Respond(f func(n int, req Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = f
}

// Requests are the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("unknown endpoint %s %s", r.Method, r.URL.Path))
		return
	}
	if s.Key != "" && r.Header.Get("Authorization") != "Bearer "+s.Key && r.Header.Get("api-key") != s.Key {
		writeError(w, http.StatusUnauthorized, "", "Incorrect API key provided.")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "", err.Error())
		return
	}
	var req struct {
		Model    string    `json:"model"`
		Messages []Message `json:"messages"`
		Stream   bool      `json:"stream"`
		Tools    []struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "", "the body is not a chat completion request")
		return
	}
	rec := Request{Header: r.Header.Clone(), Body: string(body), Messages: req.Messages, Stream: req.Stream}
	for _, t := range req.Tools {
		rec.Tools = append(rec.Tools, t.Function.Name)
	}
	s.mu.Lock()
	n := len(s.requests)
	s.requests = append(s.requests, rec)
	var reply Reply
	switch {
	case len(s.replies) > 0:
		reply, s.replies = s.replies[0], s.replies[1:]
	case s.next != nil:
		reply = s.next(n, rec)
	default:
		reply = Reply{Status: http.StatusInternalServerError}
	}
	s.mu.Unlock()
	switch {
	case reply.Status != 0:
		if reply.RetryAfter != "" {
			w.Header().Set("Retry-After", reply.RetryAfter)
		}
		writeError(w, reply.Status, "", http.StatusText(reply.Status))
		return
	case !req.Stream:
		writeError(w, http.StatusBadRequest, "", "the fake answers streamed requests only")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	if reply.Raw != "" {
		_, _ = io.WriteString(w, reply.Raw)
		return
	}
	s.stream(w, req.Model, reply)
}

// stream writes reply as chat.completion.chunk events.
func (s *Server) stream(w http.ResponseWriter, model string, reply Reply) {
	flusher, _ := w.(http.Flusher)
	send := func(v any) {
		b, _ := json.Marshal(v)
		_, _ = fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	runes := []rune(reply.Text)
	for i := 0; i < len(runes); i += 4 {
		send(chunk(map[string]any{"content": string(runes[i:min(i+4, len(runes))])}, nil))
		if i == 0 && reply.Hold != nil {
			<-reply.Hold
		}
	}
	for i, c := range reply.ToolCalls {
		send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": fmt.Sprintf("call_%d", i), "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": ""}}}}, nil))
		args := c.Arguments
		for len(args) > 0 {
			part := args[:min(7, len(args))]
			args = args[len(part):]
			send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": part}}}}, nil))
		}
	}
	finish := "stop"
	if len(reply.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	send(chunk(map[string]any{}, finish))
	if reply.PromptTokens > 0 || reply.CompletionTokens > 0 {
		send(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{}, "usage": map[string]any{"prompt_tokens": reply.PromptTokens, "completion_tokens": reply.CompletionTokens,
				"total_tokens": reply.PromptTokens + reply.CompletionTokens}})
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

// writeError answers as the API does: {"error": {...}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "fake_error", "code": code, "param": nil}})
}
