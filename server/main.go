// Command server is one replica of the session-management shop. It reads
// its configuration from the environment (and nowhere else), wires the
// three session stores into the web handler, serves, and shuts down
// gracefully on SIGTERM.
//
// "server healthcheck" probes a running replica's /healthz and exits 0 or
// 1, for container health checks in images without a shell. "server
// crash" SIGKILLs the replica in the same container (see crash.go).
// "server secrets init DIR" generates the stack's secrets on its first
// start (see secrets.go), "server secrets new NAME" prints a new value of
// one of them (compose/swarm-deploy makes Swarm secrets of it), and
// "server admin-password" prints the admin password the replica uses.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiondemo/shop/web"
	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/session"
	"github.com/sessiondemo/shop/web/session/jwtstore"
	"github.com/sessiondemo/shop/web/session/mcstore"
	"github.com/sessiondemo/shop/web/session/memstore"
	"github.com/sessiondemo/shop/web/session/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// run starts the replica and blocks until ctx is done and the server has
// shut down. Tests call it with their own getenv and a context they cancel.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 && args[1] == "secrets" {
		switch {
		case len(args) == 4 && args[2] == "init":
			return initSecrets(args[3], stdout)
		case len(args) == 4 && args[2] == "new":
			return newSecret(args[3], stdout)
		}
		return errors.New("usage: server secrets init DIR | server secrets new NAME")
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if len(args) > 1 {
		switch args[1] {
		case "healthcheck":
			return healthcheck(cfg.HTTPAddr)
		case "crash":
			return crash()
		case "admin-password":
			if cfg.AdminPassword == "" {
				return errors.New("no admin password: ADMIN_PASSWORD is not set and there is no SECRETS_DIR")
			}
			_, err := fmt.Fprintln(stdout, cfg.AdminPassword)
			return err
		default:
			return fmt.Errorf("unknown subcommand %q: want none, healthcheck, crash, admin-password or secrets init DIR", args[1])
		}
	}
	logs := newBatchWriter(stdout, flushEvery)
	defer logs.Close()
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: cfg.LogLevel}))
	peers, err := findPeers(ctx, &cfg, log)
	if err != nil {
		return err
	}
	delayAfterCrash(cfg.Replica, cfg.RestartDelay, log.Info)

	rdb := newRedisClient(cfg)
	defer rdb.Close()
	redisOps := newRedisOps(cfg)
	defer redisOps.Close()
	timeouts := session.Timeouts{Idle: cfg.IdleTimeout, Absolute: cfg.AbsoluteTimeout}
	redisStore, err := redisstore.New(rdb, cfg.EncryptionKeys, timeouts)
	if err != nil {
		return err
	}
	replication := redisstore.Replication{Replicas: cfg.RedisMinReplicasAck, Timeout: cfg.RedisAckTimeout}
	if len(redisOps.sentinels) > 0 {
		// Every replica the Sentinels see up, not just the minimum: WAIT
		// for one replica loses writes when faults overlap (issue 31).
		watch := redisstore.NewReplicaWatch(redisOps.sentinels, cfg.RedisMasterName, log.Info)
		go watch.Run(ctx)
		replication.Live = watch.Live
	}
	redisStore.RequireReplicas(replication)
	jwtStore, err := jwtstore.New(jwtstore.Options{
		Keys:        cfg.JWTKeys,
		TTL:         cfg.IdleTimeout,
		Absolute:    cfg.AbsoluteTimeout,
		Leeway:      cfg.JWTLeeway,
		Revocations: redisstore.NewDenylist(rdb, replication),
	})
	if err != nil {
		return err
	}
	memStore := memstore.New(cfg.Replica, timeouts)
	go memStore.SweepEvery(ctx, max(min(timeouts.Idle/2, time.Minute), time.Second))
	stores := web.Stores{session.Sticky: memStore, session.Redis: redisStore, session.JWT: jwtStore}
	// Memcached mode exists where MEMCACHED_SERVERS names servers.
	var memcachedAdmin admin.MemcachedServers
	if len(cfg.MemcachedServers) > 0 {
		mc, servers := newMemcached(ctx, cfg.MemcachedServers, log)
		memcachedAdmin = servers
		mcStore, err := mcstore.New(mc, cfg.EncryptionKeys, timeouts, servers.serverOf)
		if err != nil {
			return err
		}
		stores[session.Memcached] = mcStore
	}
	// stopping closes when the shutdown begins: the admin page's live
	// streams end then, rather than hold the stop for ShutdownTimeout.
	stopping := make(chan struct{})
	handler, err := web.NewHandler(web.Options{
		AllowedHosts: cfg.AllowedHosts,
		UserEnds:     redisstore.NewUserEnds(rdb, replication, cfg.AbsoluteTimeout),
		Replica:      cfg.Replica,
		DefaultMode:  cfg.DefaultMode,
		Stores:       stores,
		Logger:       log,
		Admin: admin.Options{
			User:             cfg.AdminUser,
			Password:         cfg.AdminPassword,
			InternalKey:      cfg.InternalKey,
			Peers:            peers,
			LoadBalancers:    cfg.LoadBalancers,
			PingRedis:        func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
			Redis:            redisOps,
			Memcached:        memcachedAdmin,
			Crash:            func() { logs.Flush(); crashSelf() },
			Stop:             stopSelf,
			Stopping:         stopping,
			SimulatorTargets: cfg.SimulatorTargets,
		},
	})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		// Longer than nginx's upstream keepalive_timeout (60s), so nginx,
		// not Go, closes idle upstream connections and never reuses one Go
		// has just closed.
		IdleTimeout:    75 * time.Second,
		MaxHeaderBytes: 16 << 10,
	}
	srv.RegisterOnShutdown(func() { close(stopping) })
	if cfg.PprofAddr != "" {
		stopPprof, err := startPprof(cfg.PprofAddr, log)
		if err != nil {
			return fmt.Errorf("PPROF_ADDR=%s: %w", cfg.PprofAddr, err)
		}
		defer stopPprof()
	}
	warmUp(ctx, rdb, log)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	log.Info("replica listening", "replica", cfg.Replica, "addr", ln.Addr().String(), "default_mode", cfg.DefaultMode,
		"redis_addr", cfg.RedisAddr, "idle_timeout", cfg.IdleTimeout.String(), "absolute_timeout", cfg.AbsoluteTimeout.String())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight", "replica", cfg.Replica)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// A stop asked for is not a crash, even one that had to cut requests
	// off: the next start does not wait RESTART_DELAY.
	os.Remove(crashMarker(cfg.Replica))
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped", "replica", cfg.Replica)
	return nil
}

// findPeers returns the directory of the replicas and sets cfg.Replica.
// With PEER_DNS the replicas are found through DNS, refreshed every
// peerRefresh until ctx is done, and this replica is named the way its
// peers name it (peer.NameFromDNS: app-2); without it, PEERS is a fixed
// list and the name is REPLICA_NAME or the host name.
func findPeers(ctx context.Context, cfg *config, log *slog.Logger) (peer.Directory, error) {
	if cfg.PeerDNS == "" {
		if cfg.Replica == "" {
			h, _ := os.Hostname()
			cfg.Replica = peer.NameFromDNS(h, "")
		}
		return peer.Static(cfg.Peers), nil
	}
	dns, err := peer.NewDNS(cfg.PeerDNS)
	if err != nil {
		return nil, err
	}
	// REPLICA_NAME wins. Swarm needs it: its DNS lists a task only once
	// the task is healthy, and a replica cannot be healthy before it has a
	// name, so compose/swarm.yaml names each task after its slot, as its
	// DNS name will once it is listed (app-{{.Task.Slot}}).
	if cfg.Replica == "" {
		nameCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if cfg.Replica, err = dns.SelfName(nameCtx); err != nil {
			return nil, fmt.Errorf("PEER_DNS=%s: naming this replica: %w (without Docker's DNS, list the replicas in PEERS and name each with REPLICA_NAME)", cfg.PeerDNS, err)
		}
	}
	go dns.Watch(ctx, peerRefresh, func(err error) {
		log.Warn("finding replicas through DNS failed; the last list stands until it works again", "dns", cfg.PeerDNS, "err", err.Error())
	})
	log.Info("finding replicas through DNS", "replica", cfg.Replica, "dns", cfg.PeerDNS, "every", peerRefresh.String())
	return dns, nil
}

// warmUpWithin bounds the wait for Redis before a replica listens.
const warmUpWithin = 3 * time.Second

// warmUp asks Redis for a PING before the replica listens, so that the
// Sentinel lookup and the first connection are made before any request
// needs them. nginx sends requests to a new replica as soon as Docker's
// DNS lists it; until it listens, nginx gets a refused connection and
// tries another replica. Without the warm-up, the first requests of a
// replica that joined under load (scale-out) paid for the lookup within
// their 1 s store budget, and 3 of about 3,000 redis-mode requests got a
// 503 in one CI run. Redis being down is no reason not to serve: the
// other modes work without it, so a failed PING is only logged.
func warmUp(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, warmUpWithin)
	defer cancel()
	start := time.Now()
	if err := rdb.Ping(ctx).Err(); err != nil {
		log.Warn("Redis did not answer before the replica started listening; redis mode answers 503 until it does", "err", err.Error())
		return
	}
	log.Info("Redis answered", "took", time.Since(start).String())
}

// peerRefresh is how often a replica asks DNS for the replicas: the admin
// page shows a replica that joined or left within this.
const peerRefresh = 2 * time.Second

// healthcheck asks the replica listening on addr for /healthz.
func healthcheck(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %s", resp.Status)
	}
	return nil
}
