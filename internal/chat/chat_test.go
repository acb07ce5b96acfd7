package chat

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMessageRefRoot(t *testing.T) {
	require.Equal(t, "m1", MessageRef{ID: "m1"}.Root(), "a top-level message starts its own thread")
	require.Equal(t, "root", MessageRef{ID: "m2", Thread: "root"}.Root(), "a reply belongs to its thread's root")
}
