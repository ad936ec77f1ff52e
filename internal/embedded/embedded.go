// Package embedded starts in-process Redis and NATS servers, so that `tickstash run`
// works on a machine with neither installed, and tests can own a server they restart.
//
// Redis is github.com/alicebob/miniredis (in memory, single process, enough of Redis 7
// for tickstash: streams, sorted sets, hashes, Lua). NATS is the real nats-server v2 with
// JetStream, storing in a directory of the caller's choice.
package embedded

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// Redis is an in-process Redis server.
type Redis struct {
	mr   *miniredis.Miniredis
	stop chan struct{}
	once sync.Once
}

// StartRedis starts an in-process Redis on addr ("127.0.0.1:0" for a free port).
// miniredis does not expire keys on its own clock; StartRedis moves its clock forward
// with the wall clock every second, so TTLs expire as on a real server.
func StartRedis(addr string) (*Redis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded: start redis on %s: %w", addr, err)
	}
	r := &Redis{mr: mr, stop: make(chan struct{})}
	go r.tick()
	return r, nil
}

func (r *Redis) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.mr.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr returns host:port.
func (r *Redis) Addr() string { return r.mr.Addr() }

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.mr.Addr() + "/0" }

// Close stops the server; its data is gone.
func (r *Redis) Close() {
	r.once.Do(func() {
		close(r.stop)
		r.mr.Close()
	})
}

// NATS is an in-process nats-server with JetStream.
type NATS struct {
	srv *server.Server
}

// NATSConfig configures StartNATS.
type NATSConfig struct {
	// Host to listen on; "" means 127.0.0.1.
	Host string
	// Port to listen on; 0 means a free port.
	Port int
	// StoreDir is where JetStream keeps its files; required.
	StoreDir string
}

// StartNATS starts nats-server with JetStream and waits until it accepts clients.
func StartNATS(cfg NATSConfig) (*NATS, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded: nats: StoreDir is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "tickstash-embedded",
		Host:       cfg.Host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded: nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded: nats-server did not accept connections within 10s")
	}
	return &NATS{srv: srv}, nil
}

// URL returns the nats:// URL clients connect to.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Close shuts the server down and waits for it.
func (n *NATS) Close() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}
