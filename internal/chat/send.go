package chat

import (
	"context"
	"fmt"
	"time"
)

// Sizer is implemented by platforms whose messages have size limits. Send
// fits every message to them; platforms without it get messages whole.
type Sizer interface {
	Limits() Limits
}

// Uploader is implemented by platforms that can attach a file to a thread.
// Send uploads long output through it instead of splitting it.
type Uploader interface {
	Upload(ctx context.Context, to Channel, thread MessageRef, f File) error
}

// Send delivers m to one channel: it fits m to the platform's Limits (see
// Fit), posts each part with retries (see Retry), threads later parts under
// the first one, and uploads the full output when the platform is an
// Uploader. Everything must be done by deadline. It returns the first
// part's ref and the attempts made. A part that failed after an earlier
// one was delivered is reported in the error; delivered parts are not
// posted again.
func Send(ctx context.Context, n Notifier, to Channel, m Message, b Backoff, deadline time.Time) (MessageRef, int, error) {
	parts, file := []Message{m}, (*File)(nil)
	if s, ok := n.(Sizer); ok {
		l := s.Limits()
		if _, canUpload := n.(Uploader); !canUpload {
			l.Upload = 0
		}
		parts, file = Fit(m, l)
	}
	var first MessageRef
	total := 0
	for i, part := range parts {
		if i > 0 && part.Thread == nil {
			root := first
			root.ID = first.Root()
			part.Thread = &root
		}
		if i > 0 {
			part.Replace = nil // an edit changes the first part; the rest are new replies
		}
		var ref MessageRef
		attempts, err := Retry(ctx, b, deadline, func(ctx context.Context) error {
			var err error
			ref, err = n.Post(ctx, to, part)
			return err
		})
		total += attempts
		if err != nil {
			if i == 0 {
				return MessageRef{}, total, err
			}
			return first, total, fmt.Errorf("part %d of %d: %w", i+1, len(parts), err)
		}
		if i == 0 {
			first = ref
		}
	}
	if file != nil {
		thread := first
		thread.ID = first.Root()
		if m.Thread != nil {
			thread = *m.Thread
		}
		attempts, err := Retry(ctx, b, deadline, func(ctx context.Context) error {
			return n.(Uploader).Upload(ctx, to, thread, *file)
		})
		total += attempts
		if err != nil {
			return first, total, fmt.Errorf("upload %s: %w", file.Name, err)
		}
	}
	return first, total, nil
}
