package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFleet: the hub's section and channels' clusters are checked as a
// whole, each error naming its field.
func TestFleet(t *testing.T) {
	t.Setenv("TEST_BOT_TOKEN", "xoxb-secret-value")
	hub := strings.Replace(valid, "    platform: ops\n", "    platform: ops\n    clusters: [east, west]\n    defaultCluster: east\n", 1) +
		"fleet:\n  nats:\n    url: nats://nats:4222\n  clusters:\n    - name: east\n    - name: west\n"
	c, err := parse(t, hub)
	require.NoError(t, err)
	require.Equal(t, DefaultFleetCommandTimeout, c.Fleet.CommandTimeout.D())
	require.Equal(t, DefaultFleetRetention, c.Fleet.Retention.D())
	require.Equal(t, DefaultFleetLeaseDuration, c.Fleet.LeaseDuration.D())

	for name, tc := range map[string]struct{ replace, with, want string }{
		"unknown cluster":      {"clusters: [east, west]", "clusters: [east, north]", `channels[0].clusters[1]: unknown cluster "north" (known: east, west)`},
		"default not in list":  {"clusters: [east, west]\n    defaultCluster: east", "clusters: [east]\n    defaultCluster: west", `channels[0].defaultCluster: "west" is not one of the channel's clusters (east)`},
		"no nats":              {"    url: nats://nats:4222\n", "", "fleet.nats.url: is required unless fleet.embedded"},
		"open embedded":        {"  nats:\n    url: nats://nats:4222\n", "  embedded:\n    listen: 0.0.0.0:4222\n    storeDir: /data\n", "fleet.embedded.configFile: is required"},
		"short lease":          {"  clusters:\n", "  leaseDuration: 1s\n  clusters:\n", "fleet.leaseDuration: must be at least 3s, got 1s"},
		"clusters without hub": {"fleet:\n", "flt:\n", "unknown field"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, strings.Replace(hub, tc.replace, tc.with, 1))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err = parse(t, strings.Replace(valid, "    platform: ops\n", "    platform: ops\n    clusters: [east]\n", 1))
	require.ErrorContains(t, err, "channels[0].clusters: is for a hub; fleet.clusters is empty")
}
