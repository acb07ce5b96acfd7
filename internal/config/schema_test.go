package config

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDurationPattern: the schema's pattern accepts what ParseDuration
// takes, except negative durations.
func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(DurationPattern)
	for _, s := range []string{"0", "30s", "2m", "1h30m", "1.5h", ".5s", "100ms", "10us", "10µs", "1h2m3s4ms5us6ns"} {
		_, err := time.ParseDuration(s)
		require.NoError(t, err, s)
		require.True(t, re.MatchString(s), s)
	}
	for _, s := range []string{"", "30", "-5s", "5 s", "5sec", "1d", "s", "."} {
		require.False(t, re.MatchString(s), s)
	}
}
