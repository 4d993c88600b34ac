package ratelimittest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisAddrEnv names the environment variable holding the test Redis
// address; DefaultRedisAddr is used when it is empty.
const (
	RedisAddrEnv     = "GATEHOUSE_TEST_REDIS_ADDR"
	DefaultRedisAddr = "127.0.0.1:6379"
)

// MustRedis returns a client for the test Redis, closed when the test ends.
// When Redis does not answer the test is skipped with a loud message, or
// fails when CI=true: CI must never silently skip the Redis backend. Run
// scripts/ensure-redis.sh to start one.
func MustRedis(tb testing.TB) *goredis.Client {
	tb.Helper()
	addr := os.Getenv(RedisAddrEnv)
	if addr == "" {
		addr = DefaultRedisAddr
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, PoolSize: 128, MaxRetries: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		msg := fmt.Sprintf("!!! REDIS NOT REACHABLE at %s (%v): Redis backend tests NOT RUN. "+
			"Start one with scripts/ensure-redis.sh or set %s.", addr, err, RedisAddrEnv)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// RedisServer is a throwaway redis-server process owned by one test.
type RedisServer struct {
	Addr string
	tb   testing.TB
	port int
	cmd  *exec.Cmd
}

// StartRedisServer starts redis-server on a free loopback port with no
// persistence and stops it when the test ends. It skips (or fails under
// CI=true) when no redis-server binary is installed.
func StartRedisServer(tb testing.TB) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "!!! redis-server NOT INSTALLED: degradation tests NOT RUN. Run scripts/ensure-redis.sh."
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), tb: tb, port: port}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server on its port and waits until it answers.
func (s *RedisServer) Start() {
	s.tb.Helper()
	if s.cmd != nil {
		s.tb.Fatal("redis-server already running")
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", // #nosec G204 -- the test's own redis-server
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on %s did not answer: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *RedisServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	if err := s.cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			s.tb.Logf("wait for redis-server: %v", err)
		}
	}
	s.cmd = nil
}
