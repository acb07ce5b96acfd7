// Package chat is the platform-neutral side of every chat integration.
//
// A Platform (built by a Factory from its own settings block) is both a
// Notifier, which delivers one Message to one Channel, and a Listener, which
// blocks until its context ends and hands each inbound mention or button click
// to a Handler.
//
// Who sets timeouts: the caller of Post owns the deadline (the alerting pipeline sets a
// per-post timeout); Post must return promptly when ctx ends. Listen blocks
// until ctx is done and returns nil then; it returns an error only when it
// cannot go on (for example: revoked credentials).
//
// Errors from Post are retryable unless wrapped with Permanent.
//
// Platforms register in internal/chat/platforms, the only list of platforms.
package chat
