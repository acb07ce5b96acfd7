package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Fleet configures `kubechat hub`: the process that holds the chat
// connections of a whole fleet and reaches each cluster's agent through
// NATS JetStream (see docs/fleet.md). An agent does not read it: an agent
// reaches the hub through a platform of type "hub".
type Fleet struct {
	// NATS is how the hub connects to NATS (with embedded, to the server
	// it runs itself).
	NATS NATS `yaml:"nats"`
	// Embedded, when set, runs a single-node NATS server with JetStream
	// inside the hub: for small fleets and for trying kubechat out.
	Embedded *EmbeddedNATS `yaml:"embedded"`
	// Clusters are the clusters whose agents this hub serves.
	Clusters []FleetCluster `yaml:"clusters"`
	// CommandTimeout bounds one command's round trip to an agent (default 5m).
	CommandTimeout Duration `yaml:"commandTimeout"`
	// Replicas is how many copies JetStream keeps of each stream and of
	// the hub's bucket: 3 on a NATS cluster of 3 (default 1).
	Replicas int `yaml:"replicas" jsonschema:"minimum=0,maximum=5"`
	// Retention is how long an agent's messages wait in its stream for the
	// hub, and how long the hub remembers where each was delivered, so that
	// an edit finds the message it edits (default 168h).
	Retention Duration `yaml:"retention"`
	// LeaseDuration is how long a hub's leadership lasts without renewal
	// (default 15s): with two hub replicas, the standby takes over this
	// long after the leader died (at once after a clean stop).
	LeaseDuration Duration `yaml:"leaseDuration"`
}

// FleetCluster is one cluster of the fleet.
type FleetCluster struct {
	// Name is the cluster's name, as its agent has it in cluster.name.
	Name string `yaml:"name" jsonschema:"required,minLength=1,maxLength=63,pattern=^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"`
}

// NATS is a connection to a NATS server or cluster.
type NATS struct {
	// URL is the server's URL; a NATS cluster is a comma-separated list
	// (nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222).
	URL string `yaml:"url"`
	// NKeySeedFile is a file holding this side's NKey seed (SU...), as
	// `kubechat fleet credentials` writes it.
	NKeySeedFile string `yaml:"nkeySeedFile"`
	// CredentialsFile is a NATS .creds file (user JWT and seed), for a
	// NATS deployment in operator (JWT) mode.
	CredentialsFile string `yaml:"credentialsFile"`
	// TLS, when set, connects over TLS; with certFile and keyFile, with a
	// client certificate (mTLS).
	TLS *NATSTLS `yaml:"tls"`
}

// NATSTLS are the files of a TLS connection to NATS.
type NATSTLS struct {
	CAFile   string `yaml:"caFile"`
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// EmbeddedNATS runs NATS inside the hub.
type EmbeddedNATS struct {
	// Listen is where agents connect (default 127.0.0.1:4222). Anything
	// but a loopback address needs configFile with authorization.
	Listen string `yaml:"listen"`
	// StoreDir is where JetStream keeps its streams (a persistent volume).
	StoreDir string `yaml:"storeDir" jsonschema:"required"`
	// ConfigFile is a nats-server configuration file, such as the
	// nats-server.conf that `kubechat fleet credentials` writes: its
	// authorization block gives each agent its own subjects.
	ConfigFile string `yaml:"configFile"`
}

// Fleet defaults.
const (
	DefaultFleetCommandTimeout = 5 * time.Minute
	DefaultFleetRetention      = 7 * 24 * time.Hour
	DefaultEmbeddedListen      = "127.0.0.1:4222"
	DefaultFleetLeaseDuration  = 15 * time.Second
)

func (f *Fleet) withDefaults() {
	if f.CommandTimeout == 0 {
		f.CommandTimeout = Duration(DefaultFleetCommandTimeout)
	}
	if f.Retention == 0 {
		f.Retention = Duration(DefaultFleetRetention)
	}
	if f.LeaseDuration == 0 {
		f.LeaseDuration = Duration(DefaultFleetLeaseDuration)
	}
	if f.Embedded != nil && f.Embedded.Listen == "" {
		f.Embedded.Listen = DefaultEmbeddedListen
	}
}

// fleet checks the hub's part of the config: cluster names, and that
// every channel's clusters are the fleet's.
func (v *validator) fleet(f Fleet, channels []Channel) {
	if len(f.Clusters) == 0 {
		for i, ch := range channels {
			if len(ch.Clusters) > 0 {
				v.add(fmt.Sprintf("channels[%d].clusters", i), "is for a hub; fleet.clusters is empty")
			}
		}
		return
	}
	known := v.names("fleet.clusters", len(f.Clusters), func(i int) string { return f.Clusters[i].Name })
	if f.NATS.URL == "" && f.Embedded == nil {
		v.add("fleet.nats.url", "is required unless fleet.embedded runs NATS in the hub")
	}
	if f.NATS.NKeySeedFile != "" && f.NATS.CredentialsFile != "" {
		v.add("fleet.nats", "set nkeySeedFile or credentialsFile, not both")
	}
	if t := f.NATS.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		v.add("fleet.nats.tls", "certFile and keyFile go together")
	}
	if e := f.Embedded; e != nil {
		if e.StoreDir == "" {
			v.add("fleet.embedded.storeDir", "is required: JetStream keeps the agents' messages there")
		}
		if host, _, err := net.SplitHostPort(e.Listen); err != nil {
			v.add("fleet.embedded.listen", "%q: %v", e.Listen, err)
		} else if e.ConfigFile == "" && !isLoopback(host) {
			v.add("fleet.embedded.configFile", "is required when NATS listens on %q: without its authorization any client could post as any cluster", e.Listen)
		}
	}
	if f.CommandTimeout < Duration(time.Second) {
		v.add("fleet.commandTimeout", "must be at least 1s, got %s", f.CommandTimeout)
	}
	if f.LeaseDuration < Duration(3*time.Second) {
		v.add("fleet.leaseDuration", "must be at least 3s, got %s", f.LeaseDuration)
	}
	if f.Retention < Duration(time.Hour) {
		v.add("fleet.retention", "must be at least 1h, got %s", f.Retention)
	}
	for i, ch := range channels {
		path := fmt.Sprintf("channels[%d]", i)
		if len(ch.Clusters) == 0 {
			v.add(path+".clusters", "is required on a hub: name the clusters that post to %q and take its commands", ch.Name)
		}
		for j, c := range ch.Clusters {
			v.oneOf(fmt.Sprintf("%s.clusters[%d]", path, j), c, known, "cluster")
		}
		if ch.DefaultCluster != "" && !slices.Contains(ch.Clusters, ch.DefaultCluster) {
			v.add(path+".defaultCluster", "%q is not one of the channel's clusters (%s)", ch.DefaultCluster, strings.Join(ch.Clusters, ", "))
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
