package fleet_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kubechat/kubechat/internal/config"
	"github.com/kubechat/kubechat/internal/fleet"
)

// TestAgentConfinedToItsSubjects: with the generated server config, an
// agent publishes to its own stream, but the server refuses its publish to
// another cluster's subjects, its subscription to another cluster's
// commands or to other inboxes, and any JetStream API call.
func TestAgentConfinedToItsSubjects(t *testing.T) {
	dir := t.TempDir()
	creds, err := fleet.NewCredentials([]string{"east", "west"})
	require.NoError(t, err)
	conf := filepath.Join(dir, "nats-server.conf")
	require.NoError(t, os.WriteFile(conf, []byte(creds.ServerConfig()), 0o600))
	seed := func(name string, u fleet.User) string {
		p := filepath.Join(dir, name+".nk")
		require.NoError(t, os.WriteFile(p, u.Seed, 0o600))
		return p
	}
	srv, err := fleet.Embedded(config.EmbeddedNATS{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js"), ConfigFile: conf})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	connect := func(name, seedFile, inbox string) (*nats.Conn, chan error) {
		errs := make(chan error, 16)
		opts, err := fleet.Options(config.NATS{NKeySeedFile: seedFile}, name, inbox)
		require.NoError(t, err)
		opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		nc, err := nats.Connect(srv.ClientURL(), opts...)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		return nc, errs
	}
	hubNC, _ := connect("hub", seed("hub", creds.Hub), fleet.HubInbox)
	hubJS, err := jetstream.New(hubNC)
	require.NoError(t, err)
	for _, c := range []string{"east", "west"} {
		_, err := hubJS.CreateOrUpdateStream(ctx, fleet.StreamConfig(c, time.Hour, 1))
		require.NoError(t, err)
	}

	eastNC, refused := connect("east", seed("east", creds.Agents["east"]), fleet.AgentInbox("east"))
	eastJS, err := jetstream.New(eastNC)
	require.NoError(t, err)
	_, err = eastJS.Publish(ctx, fleet.OutSubject("east"), []byte("ours"), jetstream.WithMsgID("e1"))
	require.NoError(t, err, "an agent publishes to its own stream")

	violation := func(what string) {
		t.Helper()
		require.NoError(t, eastNC.Flush())
		select {
		case err := <-refused:
			require.ErrorContains(t, err, "Permissions Violation", what)
		case <-ctx.Done():
			t.Fatalf("the server did not refuse %s", what)
		}
	}
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = eastJS.Publish(pctx, fleet.OutSubject("west"), []byte("forged"), jetstream.WithMsgID("w1"))
	pcancel()
	require.Error(t, err, "no acknowledgement for a refused publish")
	violation("a publish to west's stream")

	_, err = eastNC.SubscribeSync(fleet.CommandSubject("west", "ops-slack"))
	require.NoError(t, err) // refused by the server, asynchronously
	violation("a subscription to west's commands")

	_, err = eastNC.SubscribeSync("_INBOX.>")
	require.NoError(t, err)
	violation("a subscription to every inbox")

	require.NoError(t, eastNC.Publish(fleet.HelloSubject("west"), []byte("{}")))
	violation("a hello as west")

	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = eastJS.CreateOrUpdateStream(sctx, jetstream.StreamConfig{Name: "steal", Subjects: []string{"kubechat.west.>"}})
	scancel()
	require.Error(t, err, "an agent has no JetStream API")

	west, err := hubJS.Stream(ctx, fleet.Stream("west"))
	require.NoError(t, err)
	info, err := west.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "nothing reached west's stream")
	east, err := hubJS.Stream(ctx, fleet.Stream("east"))
	require.NoError(t, err)
	info, err = east.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs)
	require.True(t, strings.Contains(creds.ServerConfig(), creds.Agents["west"].Public))
	require.NotContains(t, creds.ServerConfig(), string(creds.Agents["west"].Seed), "the server config holds no seed")
}
