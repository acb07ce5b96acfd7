package executor

import "context"

// Assistant is implemented by executors that answer a question in plain
// words (the ai executor) instead of running argv. The command handler
// calls Ask, not Execute, and hands it a ToolRunner: every command the
// assistant runs to look at the cluster goes through the handler's own
// path (policy, identity, audit, output cap), as if the asking user had
// typed it. An assistant never runs anything any other way.
type Assistant interface {
	// Private reports whether namespace is never sent to the model
	// (the assistant is not offered for alerts about it).
	Private(namespace string) bool
	// Ask answers q. It calls draft with the answer so far as it grows
	// (draft may be called often: the caller rate-limits what it shows).
	// It returns what it found even when a budget stopped it; an error
	// means no answer at all.
	Ask(ctx context.Context, q Question, tools ToolRunner, draft func(text string)) (Answer, error)
}

// Question is one question to an Assistant.
type Question struct {
	// Text is what the user asked.
	Text string
	// Conversation identifies the thread it was asked in; a follow-up in
	// the same thread continues the conversation.
	Conversation string
	// About is what the question is about, when a button asked it (an
	// alert's text); empty for a typed question.
	About  string
	Caller Caller
}

// ToolRunner runs read-only commands for an Assistant, for the user who
// asked, in the channel they asked in.
type ToolRunner interface {
	// Has reports whether the channel may run commands of executorType
	// ("kubectl", "helm", "flux", "argocd").
	Has(executorType string) bool
	// Run runs "<executor of executorType> args..." through the command
	// handler's path. A refusal (policy, RBAC, a verb that needs a
	// confirmation) is a ToolResult with Refused set, never an error.
	Run(ctx context.Context, executorType string, args []string) ToolResult
}

// ToolResult is what one command run for an Assistant gave.
type ToolResult struct {
	// Output is its output and errors, or the refusal's text.
	Output string
	// Refused is set when policy or RBAC refused it; RefusedBy names
	// which ("policy", "rbac").
	Refused   bool
	RefusedBy string
	// Failed is set when it ran and failed (a non-zero exit).
	Failed bool
	// Namespace is where it ran (the namespace it named, else the
	// policy's default); empty for a cluster-scoped command.
	Namespace string
	// Truncated is set when the output reached the policy's cap.
	Truncated bool
}

// Answer is an Assistant's reply.
type Answer struct {
	// Text is the answer, as much of it as there is.
	Text string
	// StoppedBy names the budget that ended the answer early
	// ("tool_calls", "question_tokens", "daily_tokens", "time"); empty
	// when the model finished. StopNote says so to the user, with the limit.
	StoppedBy string
	StopNote  string
	// Suggested are commands the model suggests, as executor type and
	// argv ("kubectl", "rollout", "restart", ...). The handler shows them
	// as buttons; a click is checked like a typed command. They never run
	// on their own.
	Suggested [][]string
	// Tools counts the tool calls by tool name and outcome.
	Tools []ToolCall
	// PromptTokens and CompletionTokens are what the provider counted
	// (or, when it reports none, an estimate).
	PromptTokens, CompletionTokens int64
}

// ToolCall is one tool call of an answer and its outcome: "ok",
// "refused" (RefusedBy says by what) or "failed".
type ToolCall struct {
	Tool      string
	Result    string
	RefusedBy string
}
