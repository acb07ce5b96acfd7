package fleet

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kubechat/kubechat/internal/config"
)

// Embedded starts a single-node NATS server with JetStream, as the hub
// runs it for a small fleet (and tests do). Shut it down with Shutdown.
func Embedded(e config.EmbeddedNATS) (*server.Server, error) {
	opts := &server.Options{}
	if e.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(e.ConfigFile); err != nil {
			return nil, fmt.Errorf("fleet.embedded.configFile: %w", err)
		}
	}
	listen := e.Listen
	if listen == "" {
		listen = config.DefaultEmbeddedListen
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("fleet.embedded.listen %q: %w", listen, err)
	}
	opts.Host = host
	if opts.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("fleet.embedded.listen %q: port: %w", listen, err)
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.JetStream = true
	opts.StoreDir = e.StoreDir
	opts.NoSigs = true
	opts.NoLog = true
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 30s")
	}
	return srv, nil
}
