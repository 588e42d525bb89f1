package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// config is everything a replica reads from its environment.
type config struct {
	// Replica is REPLICA_NAME; empty means: found through PeerDNS's reverse
	// lookup, or the host name without it.
	Replica  string
	HTTPAddr string
	// PprofAddr is where net/http/pprof listens (PPROF_ADDR, e.g. :6060),
	// on its own port that nginx never proxies; empty turns it off.
	PprofAddr   string
	DefaultMode session.Mode
	// RedisAddr is the one Redis server to use when RedisSentinels is
	// empty.
	RedisAddr     string
	RedisUsername string
	RedisPassword string
	// RedisSentinels are the Sentinels' host:port (REDIS_SENTINELS); when
	// set, the replicas ask them which Redis node is the primary of
	// RedisMasterName, and follow a failover.
	RedisSentinels  []string
	RedisMasterName string
	// RedisMinReplicasAck is how many Redis replicas at least must have a
	// session write before the shop acknowledges it (WAIT), within
	// RedisAckTimeout; with Sentinels, every replica they see up must
	// (redisstore.ReplicaWatch). 0 is asynchronous replication.
	RedisMinReplicasAck int
	RedisAckTimeout     time.Duration
	EncryptionKeys      []session.Key
	JWTKeys             []session.Key
	IdleTimeout         time.Duration
	AbsoluteTimeout     time.Duration
	ShutdownTimeout     time.Duration
	RestartDelay        time.Duration
	JWTLeeway           time.Duration
	LogLevel            slog.Level
	// AdminUser and AdminPassword guard the admin page's controls; an
	// empty password turns them off.
	AdminUser     string
	AdminPassword string
	// Peers maps the other replicas' names to their base URLs (PEERS, a
	// fixed list); PeerDNS, when set, finds them instead.
	Peers map[string]string
	// PeerDNS is host:port of a DNS name that resolves to every replica
	// (the compose service, app:8080).
	PeerDNS string
	// LoadBalancers maps the load balancers' names to host:port.
	LoadBalancers map[string]string
	// SimulatorTargets are the load balancers' URLs for the traffic simulator.
	SimulatorTargets []string
	// AllowedHosts are the Host names the replica answers (IP addresses
	// are always allowed): localhost, the simulator targets' hosts (the
	// load balancers' names inside the network) and ALLOWED_HOSTS.
	AllowedHosts []string
	// RedisOpsUsername and RedisOpsPassword are a Redis user allowed only
	// SHUTDOWN, for the admin's "restart Redis"; empty turns it off.
	RedisOpsUsername string
	RedisOpsPassword string
	// MemcachedServers are the Memcached servers' host:port
	// (MEMCACHED_SERVERS); empty leaves memcached mode out.
	MemcachedServers []string
	// InternalKey signs the calls between replicas (INTERNAL_KEY): its own
	// random key, shared by the replicas, never derived from a password.
	// Empty turns the controls between replicas off.
	InternalKey string
	// SecretsDir is where the generated secrets are (SECRETS_DIR, the
	// volume compose's secrets service writes); a secret set in the
	// environment wins over its file.
	SecretsDir string
}

// loadConfig reads the configuration. Every variable has a default except
// the secrets: the keys must be set, in the environment or in SECRETS_DIR,
// and no secret may be a value this project ever published (a demo
// default ends up in production). Secrets are never logged or echoed in
// errors.
func loadConfig(getenv func(string) string) (config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	secretsDir := strings.TrimSpace(getenv("SECRETS_DIR"))
	secrets := map[string]string{}
	for _, gs := range generatedSecrets {
		v := strings.TrimSpace(getenv(gs.Env))
		if v == "" {
			var err error
			if v, err = readSecret(secretsDir, gs.File); err != nil {
				errs = append(errs, fmt.Errorf("%s is not set and %w", gs.Env, err))
			}
		}
		if isPublicSecret(v) {
			errs = append(errs, fmt.Errorf("%s is a value this project once published as a demo default, so anyone can know it: unset it (compose then generates one on first start) or set your own", gs.Env))
		}
		secrets[gs.Env] = v
	}
	c := config{
		Replica:       get("REPLICA_NAME", ""),
		HTTPAddr:      get("HTTP_ADDR", ":8080"),
		PprofAddr:     get("PPROF_ADDR", ""),
		RedisAddr:     get("REDIS_ADDR", "localhost:6379"),
		RedisUsername: get("REDIS_USERNAME", ""),
		RedisPassword: secrets["REDIS_PASSWORD"],
		InternalKey:   secrets["INTERNAL_KEY"],
		SecretsDir:    secretsDir,
	}
	if c.Replica != "" && !session.ValidReplicaName(c.Replica) {
		errs = append(errs, fmt.Errorf("REPLICA_NAME=%q: want 1 to 32 lower-case letters, digits, '-' or '_'", c.Replica))
	}
	mode, ok := session.ParseMode(get("SESSION_DEFAULT_MODE", string(session.Sticky)))
	if !ok {
		errs = append(errs, fmt.Errorf("SESSION_DEFAULT_MODE=%q: want %s", getenv("SESSION_DEFAULT_MODE"), session.Choices(session.Modes)))
	}
	c.DefaultMode = mode
	// durationAtLeast reads a Go duration no shorter than min (0 or 1ns).
	durationAtLeast := func(name, def string, min time.Duration) time.Duration {
		v := get(name, def)
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			errs = append(errs, fmt.Errorf("%s=%q: want a Go duration of at least %v, such as 30m", name, v, min))
		}
		return d
	}
	duration := func(name, def string) time.Duration { return durationAtLeast(name, def, time.Nanosecond) }
	c.IdleTimeout = duration("SESSION_IDLE_TIMEOUT", "30m")
	c.AbsoluteTimeout = duration("SESSION_ABSOLUTE_TIMEOUT", "12h")
	c.ShutdownTimeout = duration("SHUTDOWN_TIMEOUT", "10s")
	c.JWTLeeway = duration("JWT_LEEWAY", "5s")
	c.RestartDelay = durationAtLeast("RESTART_DELAY", "0s", 0)
	if c.IdleTimeout > 0 && c.AbsoluteTimeout > 0 && c.IdleTimeout > c.AbsoluteTimeout {
		errs = append(errs, errors.New("SESSION_IDLE_TIMEOUT is longer than SESSION_ABSOLUTE_TIMEOUT"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", getenv("LOG_LEVEL")))
	}
	c.AdminUser = get("ADMIN_USER", "admin")
	c.AdminPassword = secrets["ADMIN_PASSWORD"]
	c.RedisSentinels = splitList(getenv("REDIS_SENTINELS"))
	for _, hp := range c.RedisSentinels {
		if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("REDIS_SENTINELS: %q is not a host:port, such as sentinel1:26379", hp))
		}
	}
	c.RedisMasterName = get("REDIS_MASTER_NAME", "sessions")
	// 1 by default with Sentinels: a write the primary alone holds is lost
	// when the primary dies. A lone server (no Sentinels) has no replica
	// to wait for.
	acks := "0"
	if len(c.RedisSentinels) > 0 {
		acks = "1"
	}
	if n, err := strconv.Atoi(get("REDIS_MIN_REPLICAS_ACK", acks)); err != nil || n < 0 || n > 10 {
		errs = append(errs, fmt.Errorf("REDIS_MIN_REPLICAS_ACK=%q: want how many Redis replicas must have a write before it is acknowledged, 0 to 10", getenv("REDIS_MIN_REPLICAS_ACK")))
	} else {
		c.RedisMinReplicasAck = n
	}
	c.RedisAckTimeout = duration("REDIS_ACK_TIMEOUT", "500ms")
	c.MemcachedServers = splitList(getenv("MEMCACHED_SERVERS"))
	for _, hp := range c.MemcachedServers {
		if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("MEMCACHED_SERVERS: %q is not a host:port, such as memcached1:11211", hp))
		}
	}
	c.RedisOpsUsername = get("REDIS_OPS_USERNAME", "ops")
	c.RedisOpsPassword = secrets["REDIS_OPS_PASSWORD"]
	c.Peers = map[string]string{}
	// PEERS lists host:port (the host names the replica) or name=host:port.
	for _, item := range splitList(getenv("PEERS")) {
		name, hp, named := strings.Cut(item, "=")
		if !named {
			hp = item
		}
		host, _, err := net.SplitHostPort(hp)
		if !named {
			name = host
		}
		if err != nil || !session.ValidReplicaName(name) {
			errs = append(errs, fmt.Errorf("PEERS: %q is not a replica's host:port (such as app2:8080) or name=host:port", item))
			continue
		}
		c.Peers[name] = "http://" + hp
	}
	if c.PeerDNS = get("PEER_DNS", ""); c.PeerDNS != "" {
		host, port, err := net.SplitHostPort(c.PeerDNS)
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("PEER_DNS=%q: want the replicas' DNS name and port, such as app:8080", c.PeerDNS))
		}
		if len(c.Peers) > 0 {
			errs = append(errs, errors.New("PEERS and PEER_DNS are both set: the replicas come from one or the other"))
		}
		// With PEER_DNS the peers name a replica from its DNS name
		// (service-N); a name of its own would list it twice. Swarm is the
		// exception that needs one (see findPeers): REPLICA_NAME may give
		// the name DNS will, service-N, and nothing else.
		service := strings.TrimPrefix(host, "tasks.")
		if c.Replica != "" && !regexp.MustCompile(`^`+regexp.QuoteMeta(service)+`-[0-9]+$`).MatchString(c.Replica) {
			errs = append(errs, fmt.Errorf("REPLICA_NAME=%q and PEER_DNS are both set: with PEER_DNS a replica is named by DNS, as its peers name it (a name of its own would list it twice), so REPLICA_NAME may only be the name DNS gives it, %s-N (Swarm: %s-{{.Task.Slot}}); use PEERS to name replicas yourself", c.Replica, service, service))
		}
	}
	c.LoadBalancers = map[string]string{}
	for _, hp := range splitList(getenv("LOAD_BALANCERS")) {
		host, _, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			errs = append(errs, fmt.Errorf("LOAD_BALANCERS: %q is not a host:port, such as lb:80", hp))
			continue
		}
		c.LoadBalancers[host] = hp
	}
	for _, u := range splitList(getenv("SIMULATOR_TARGETS")) {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("SIMULATOR_TARGETS: %q is not an http:// URL, such as http://lb", u))
			continue
		}
		c.SimulatorTargets = append(c.SimulatorTargets, strings.TrimRight(u, "/"))
	}
	c.AllowedHosts = []string{"localhost"}
	for _, u := range c.SimulatorTargets {
		if h, err := url.Parse(u); err == nil && h.Hostname() != "" {
			c.AllowedHosts = append(c.AllowedHosts, h.Hostname())
		}
	}
	for _, h := range strings.FieldsFunc(getenv("ALLOWED_HOSTS"), func(r rune) bool { return r == ',' || r == ' ' }) {
		if !hostNamePattern.MatchString(h) {
			errs = append(errs, fmt.Errorf("ALLOWED_HOSTS: %q is not a host name (no port, no scheme), such as shop.example.test", h))
			continue
		}
		c.AllowedHosts = append(c.AllowedHosts, h)
	}
	var err error
	if c.EncryptionKeys, err = parseKeys("SESSION_ENCRYPTION_KEYS", secrets["SESSION_ENCRYPTION_KEYS"], 32, 32); err != nil {
		errs = append(errs, err)
	}
	if c.JWTKeys, err = parseKeys("JWT_SIGNING_KEYS", secrets["JWT_SIGNING_KEYS"], 32, 1024); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// hostNamePattern is a DNS host name: letters, digits, '-' and '.'.
var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// splitList splits a comma-separated setting, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseKeys reads "id:base64[,id:base64...]". The first key is the one in
// use; the others are still accepted, so keys can rotate.
func parseKeys(name, v string, minLen, maxLen int) ([]session.Key, error) {
	if strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%s is not set: want id:base64-key[,id:base64-key...] (generate a key with: head -c 32 /dev/urandom | base64)", name)
	}
	var keys []session.Key
	for i, part := range strings.Split(v, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("%s: key %d has no id: want id:base64-key", name, i+1)
		}
		secret, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if secret, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("%s: key %q is not base64", name, id)
			}
		}
		if len(secret) < minLen || len(secret) > maxLen {
			if minLen == maxLen {
				return nil, fmt.Errorf("%s: key %q is %d bytes, want exactly %d", name, id, len(secret), minLen)
			}
			return nil, fmt.Errorf("%s: key %q is %d bytes, want at least %d random bytes", name, id, len(secret), minLen)
		}
		keys = append(keys, session.Key{ID: id, Secret: secret})
	}
	return keys, nil
}
