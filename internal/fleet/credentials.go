package fleet

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Credentials are the NKeys of a fleet: one user for the hub and one for
// each cluster's agent, with the permissions that confine each agent to
// its own subjects.
type Credentials struct {
	// Hub is the hub's user.
	Hub User
	// Agents are the agents' users, by cluster.
	Agents map[string]User
}

// User is one NATS user: its public NKey (what the server knows) and its
// seed (what the client keeps, a secret).
type User struct {
	Public string
	Seed   []byte
}

// NewCredentials makes a fresh NKey user for the hub and for each cluster.
func NewCredentials(clusters []string) (*Credentials, error) {
	c := &Credentials{Agents: map[string]User{}}
	var err error
	if c.Hub, err = newUser(); err != nil {
		return nil, err
	}
	for _, name := range clusters {
		if _, dup := c.Agents[name]; dup {
			return nil, fmt.Errorf("cluster %q is named twice", name)
		}
		if c.Agents[name], err = newUser(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func newUser() (User, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return User{}, fmt.Errorf("create nkey: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return User{}, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return User{}, err
	}
	return User{Public: pub, Seed: seed}, nil
}

// AgentPermissions are what cluster's agent may do: publish its messages
// (and hellos) to its own subjects, take its own commands and answer them
// (responses only to the requests it received), and read its own inbox.
// It may touch no other cluster's subject and no JetStream API.
func AgentPermissions(cluster string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{OutSubject(cluster), HelloSubject(cluster)}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			"kubechat." + cluster + ".cmd.>", AgentInbox(cluster) + ".>",
		}},
		Response: &server.ResponsePermission{MaxMsgs: 1},
	}
}

// HubPermissions are the hub's: every cluster's commands, the JetStream
// API (its streams, consumers and buckets), the hellos and its own inbox.
func HubPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{"kubechat.*.cmd.>", "$JS.API.>", "$JS.ACK.>", "$KV." + Bucket + ".>", "$KV." + LeaderBucket + ".>", "$KV." + StateBucket + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			"kubechat.*.hello", HubInbox + ".>",
		}},
	}
}

// NkeyUsers are the server's users for c, as the embedded server takes them.
func (c *Credentials) NkeyUsers() []*server.NkeyUser {
	users := []*server.NkeyUser{{Nkey: c.Hub.Public, Permissions: HubPermissions()}}
	for _, name := range c.clusters() {
		users = append(users, &server.NkeyUser{Nkey: c.Agents[name].Public, Permissions: AgentPermissions(name)})
	}
	return users
}

func (c *Credentials) clusters() []string {
	names := make([]string, 0, len(c.Agents))
	for n := range c.Agents {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ServerConfig is the nats-server configuration of c: JetStream on, and
// an authorization block with one user per side. Give it to an external
// NATS cluster (merged into its config), or to the hub's embedded server
// (fleet.embedded.configFile).
func (c *Credentials) ServerConfig() string {
	var b strings.Builder
	b.WriteString("# kubechat fleet: one NKey user for the hub and one per cluster's agent.\n")
	b.WriteString("# Written by `kubechat fleet credentials`; the seeds are in the files next to it.\n")
	b.WriteString("authorization {\n  users = [\n")
	user := func(comment, pub string, p *server.Permissions) {
		fmt.Fprintf(&b, "    # %s\n    {\n      nkey: %s\n      permissions: {\n", comment, pub)
		fmt.Fprintf(&b, "        publish: { allow: %s }\n", list(p.Publish.Allow))
		fmt.Fprintf(&b, "        subscribe: { allow: %s }\n", list(p.Subscribe.Allow))
		if p.Response != nil {
			fmt.Fprintf(&b, "        allow_responses: { max: %d }\n", p.Response.MaxMsgs)
		}
		b.WriteString("      }\n    }\n")
	}
	user("the hub", c.Hub.Public, HubPermissions())
	for _, name := range c.clusters() {
		user("the agent of cluster "+name, c.Agents[name].Public, AgentPermissions(name))
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

func list(subjects []string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
