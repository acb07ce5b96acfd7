package chat

import "context"

// Permalinker is implemented by platforms whose messages have an address a
// person can open: Slack's chat.getPermalink, Discord's and Mattermost's
// message links, a Teams deep link, the web chat's page. Sinks link back to
// an alert's chat messages with it (PagerDuty's links), and a pull
// request's commit status links to its chat thread.
type Permalinker interface {
	// Permalink is the address of the message ref points at, or "" when
	// the platform cannot say where it is: never a wrong one.
	Permalink(ctx context.Context, ref MessageRef) (string, error)
}

// Permalink is the address of the message ref points at on n, or "" when
// n is no Permalinker or has no address for it.
func Permalink(ctx context.Context, n Notifier, ref MessageRef) (string, error) {
	pl, ok := n.(Permalinker)
	if !ok || ref.ID == "" {
		return "", nil
	}
	return pl.Permalink(ctx, ref)
}

// ThreadRef is the thread's root message of ref: what a link to the
// thread points at.
func ThreadRef(ref MessageRef) MessageRef {
	return MessageRef{Platform: ref.Platform, Channel: ref.Channel, ID: ref.Root()}
}

// Link is the address of one of an alert's messages elsewhere: its chat
// message in a channel.
type Link struct {
	// Text names where it is ("ops-slack alerts").
	Text string
	URL  string
}

// BackLinker is implemented by sinks that link back to the chat messages
// of the alerts they deliver (PagerDuty's links). For them the alerting
// pipeline waits, bounded, for the same event's chat deliveries, and fills
// Message.Links with the permalinks of those that have one.
type BackLinker interface {
	LinksBack()
}
