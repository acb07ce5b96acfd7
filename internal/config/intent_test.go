package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecondDocumentIsRefused: a YAML decoder reads the first document of
// a file and drops the rest, so a config pasted after a "---" would be
// ignored without a word. Load refuses it, at the "---" line; an empty
// document (a trailing "---") is harmless.
func TestSecondDocumentIsRefused(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	_, err := parse(t, valid+"---\nlog:\n  level: debug\n")
	require.EqualError(t, err, "config.yaml:33: a second YAML document starts here, and it would be ignored: a config file holds one document (to merge several, give several files)")

	_, err = parse(t, "---\n---\n"+valid)
	require.ErrorContains(t, err, "config.yaml:2: a second YAML document starts here", "an empty first document hides nothing")

	_, err = parse(t, valid+"---\nlog: [\n")
	require.ErrorContains(t, err, "config.yaml:", "a syntax error in a later document is reported")

	for _, ok := range []string{"---\n" + valid, valid + "---\n", valid + "---\n# the end\n", valid + "...\n"} {
		_, err := parse(t, ok)
		require.NoError(t, err, "%q", ok[len(ok)-12:])
	}
}

// TestRatesAreFiniteAndSane: YAML parses .nan, .inf and 1e308 as floats,
// and each would pass as a rate; none is meant.
func TestRatesAreFiniteAndSane(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	with := func(rate string) string {
		return strings.Replace(valid, "    platform: ops\n", "    platform: ops\n    rateLimit:\n"+rate, 1)
	}
	for rate, want := range map[string]string{
		"      perSecond: .nan\n":  `config.yaml:12: channels[0].rateLimit.perSecond: expected a finite number, got ".nan"`,
		"      perSecond: .inf\n":  `config.yaml:12: channels[0].rateLimit.perSecond: expected a finite number, got ".inf"`,
		"      perSecond: -.Inf\n": `config.yaml:12: channels[0].rateLimit.perSecond: expected a finite number, got "-.Inf"`,
		"      perSecond: 1e308\n": `config.yaml:12: channels[0].rateLimit.perSecond: must be a positive number of messages per second, at most 1e+06 (0 or unset: the default, 1), got 1e+308`,
		"      perSecond: -1\n":    `config.yaml:12: channels[0].rateLimit.perSecond: must be a positive number`,
		"      burst: -1\n":        `config.yaml:12: channels[0].rateLimit.burst: must be positive (0 or unset: the default, 10), got -1`,
	} {
		_, err := parse(t, with(rate))
		require.Error(t, err, rate)
		require.Contains(t, err.Error(), want, rate)
	}
	for _, rate := range []string{"      perSecond: 0.5\n", "      perSecond: 1e6\n", "      perSecond: 0\n      burst: 0\n"} {
		_, err := parse(t, with(rate))
		require.NoError(t, err, rate)
	}
}

// TestWarnings: a config without a platform or without a source loads,
// as a file cut short would, and says what is missing.
func TestWarnings(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "x")
	c, err := parse(t, valid)
	require.NoError(t, err)
	require.Empty(t, c.Warnings())

	c, err = parse(t, "cluster:\n  name: dev\n")
	require.NoError(t, err)
	var got []string
	for _, w := range c.Warnings() {
		got = append(got, w.Error())
	}
	require.Equal(t, []string{
		"config.yaml: platforms: no platform is configured: the agent can post no alert and hear no command",
		"config.yaml: sources: no source is configured: the agent posts no alerts (it still answers commands)",
	}, got)

	commandsOnly := strings.Replace(valid, "      sources: [pods]\n", "", 1)
	commandsOnly = commandsOnly[:strings.Index(commandsOnly, "sources:\n  - name: pods")] + commandsOnly[strings.Index(commandsOnly, "executors:\n  - type"):]
	c, err = parse(t, commandsOnly)
	require.NoError(t, err)
	require.Len(t, c.Warnings(), 1)
	require.Contains(t, c.Warnings()[0].Error(), "sources: no source is configured")

	c, err = parse(t, "cluster:\n  name: dev\nplatforms: []\nsources: []\n")
	require.NoError(t, err)
	require.Equal(t, "config.yaml:3: platforms: no platform is configured: the agent can post no alert and hear no command", c.Warnings()[0].Error(), "an empty list is where it is")
}
