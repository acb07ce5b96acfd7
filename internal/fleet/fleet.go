// Package fleet is the protocol between a fleet's agents and its hub
// (`kubechat hub`), over NATS JetStream. One hub holds the chat
// connections; each cluster's agent holds none and dials out to NATS.
//
// Subjects, with <c> the cluster's name:
//
//	kubechat.<c>.out            the agent's messages (alerts and their edits): stream kubechat-<c>
//	kubechat.<c>.cmd.<platform> commands for the agent (request/reply)
//	kubechat.<c>.hello          the agent's heartbeat (core NATS)
//	_INBOX.kubechat.<c>.>       the agent's inbox (JetStream acknowledgements)
//	_INBOX.kubechat-hub.>       the hub's inbox (the agents' replies)
//
// Every message an agent publishes carries its stable key as Nats-Msg-Id,
// so the stream drops a re-publish within its duplicate window, and the
// hub acknowledges a message only after its delivery is recorded in the
// hub's key-value bucket, so neither side's restart loses or repeats one.
// Permissions confines each agent to its own subjects.
package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// Names of what the hub keeps in JetStream.
const (
	// Bucket is the hub's key-value bucket: where each message was
	// delivered (its ref), by the message's id.
	Bucket = "kubechat-hub"
	// StateBucket is what the hub's platforms keep across restarts (Teams'
	// conversation references), shared by its replicas.
	StateBucket = "kubechat-hub-state"
	// Consumer is the hub's durable consumer on each cluster's stream.
	Consumer = "hub"
	// HubInbox prefixes the hub's reply subjects, which no agent may read.
	HubInbox = "_INBOX.kubechat-hub"
	// DuplicateWindow is how long a stream drops a message whose id it
	// already holds: longer than an agent retries one message.
	DuplicateWindow = time.Hour
	// HeartbeatInterval is how often an agent says hello.
	HeartbeatInterval = 10 * time.Second
	// refPrefix marks the refs an agent hands out for the messages it
	// published: the hub swaps them for the chat platform's refs.
	refPrefix = "fleet:"
)

// OutSubject is where cluster's agent publishes its messages.
func OutSubject(cluster string) string { return "kubechat." + cluster + ".out" }

// CommandSubject is where cluster's agent takes commands from platform.
func CommandSubject(cluster, platform string) string {
	return "kubechat." + cluster + ".cmd." + platform
}

// HelloSubject is where cluster's agent says it is there.
func HelloSubject(cluster string) string { return "kubechat." + cluster + ".hello" }

// AgentInbox prefixes cluster's agent's reply subjects.
func AgentInbox(cluster string) string { return "_INBOX.kubechat." + cluster }

// Stream names cluster's stream.
func Stream(cluster string) string { return "kubechat-" + cluster }

// StreamConfig is cluster's stream: its messages, kept for retention
// (or until the hub took them; the hub's consumer is the only one).
func StreamConfig(cluster string, retention time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream(cluster),
		Description: "kubechat messages of cluster " + cluster,
		Subjects:    []string{OutSubject(cluster)},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Duplicates:  min(DuplicateWindow, retention),
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
}

// Post is one message an agent sends through the hub.
type Post struct {
	// Platform is the hub's platform instance; Channel is the channel there.
	Platform string       `json:"platform"`
	Channel  chat.Channel `json:"channel"`
	Message  chat.Message `json:"message"`
}

// Request is one inbound message (a mention or a click) the hub hands an agent.
type Request struct {
	Inbound chat.Inbound `json:"inbound"`
}

// Reply is an agent's answer to a Request.
type Reply struct {
	Message chat.Message `json:"message"`
	// Error is set when the agent could not answer.
	Error string `json:"error,omitempty"`
}

// Hello is an agent's heartbeat.
type Hello struct {
	Cluster string    `json:"cluster"`
	Version string    `json:"version"`
	Sent    time.Time `json:"sent"`
}

// MessageID is the stream id of m posted to channel on platform: its
// stable key when it has one (every alert and edit does), else a digest of
// what it says, so that retries of one post share an id.
func MessageID(platform string, to chat.Channel, m chat.Message, body []byte) string {
	if m.Key != "" {
		return m.Key
	}
	h := sha256.Sum256(append([]byte(platform+"\x00"+to.ID+"\x00"), body...))
	return "digest-" + hex.EncodeToString(h[:16])
}

// AgentRef is the ref an agent hands out for the message it published
// with id: stable, and swapped by the hub for the chat platform's ref.
func AgentRef(platform string, to chat.Channel, id string, thread *chat.MessageRef) chat.MessageRef {
	r := chat.MessageRef{Platform: platform, Channel: to.ID, ID: refPrefix + id}
	if thread != nil {
		r.Thread = thread.Root()
	}
	return r
}

// PublishedID returns the message id inside an agent's ref, if ref is one.
func PublishedID(id string) (string, bool) { return strings.CutPrefix(id, refPrefix) }

// Options are the nats.go options of conn: credentials, TLS, reconnects
// for ever (an agent outlives NATS outages), and the inbox prefix whose
// subjects the permissions let this side read.
func Options(conn config.NATS, name, inbox string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(inbox),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
	}
	switch {
	case conn.NKeySeedFile != "" && conn.CredentialsFile != "":
		return nil, errors.New("nats: set nkeySeedFile or credentialsFile, not both")
	case conn.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(conn.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats nkeySeedFile: %w", err)
		}
		opts = append(opts, o)
	case conn.CredentialsFile != "":
		opts = append(opts, nats.UserCredentials(conn.CredentialsFile))
	}
	if t := conn.TLS; t != nil {
		if t.CAFile != "" {
			opts = append(opts, nats.RootCAs(t.CAFile))
		}
		switch {
		case t.CertFile != "" && t.KeyFile != "":
			opts = append(opts, nats.ClientCert(t.CertFile, t.KeyFile))
		case t.CertFile != "" || t.KeyFile != "":
			return nil, errors.New("nats tls: certFile and keyFile go together")
		}
		if t.CAFile == "" && t.CertFile == "" {
			opts = append(opts, nats.Secure())
		}
	}
	return opts, nil
}
