package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Demo keys for tests only.
const (
	testEncKey = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testJWTKey = "j1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"server"}, env(map[string]string{
			"REPLICA_NAME":            "app7",
			"HTTP_ADDR":               "127.0.0.1:0",
			"REDIS_ADDR":              "127.0.0.1:1",
			"SESSION_ENCRYPTION_KEYS": testEncKey,
			"JWT_SIGNING_KEYS":        testJWTKey,
		}), pw)
		pw.Close()
	}()
	logs := bufio.NewScanner(pr)
	var addr string
	deadline := time.After(10 * time.Second)
	lines := make(chan string)
	go func() {
		for logs.Scan() {
			lines <- logs.Text()
		}
		close(lines)
	}()
	for addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("server exited: %v", <-done)
			}
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "replica listening" {
				addr = rec.Addr
			}
			if strings.Contains(line, "AAECAwQF") || strings.Contains(line, "ICEiIyQl") {
				t.Errorf("a secret was logged: %s", line)
			}
		case <-deadline:
			t.Fatal("server did not start within 10s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Replica") != "app7" {
		t.Errorf("healthz: %d, X-Replica %q", resp.StatusCode, resp.Header.Get("X-Replica"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v after shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not shut down")
	}
}

func TestConfigErrorsNameTheVariableNotTheSecret(t *testing.T) {
	base := map[string]string{"SESSION_ENCRYPTION_KEYS": testEncKey, "JWT_SIGNING_KEYS": testJWTKey}
	if _, err := loadConfig(env(base)); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for _, tc := range []struct {
		name, key, value, mentions string
	}{
		{"no encryption keys", "SESSION_ENCRYPTION_KEYS", "", "SESSION_ENCRYPTION_KEYS is not set"},
		{"short encryption key", "SESSION_ENCRYPTION_KEYS", "k1:c2VjcmV0LXZhbHVl", "want exactly 32"},
		{"no key id", "SESSION_ENCRYPTION_KEYS", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "no id"},
		{"short jwt key", "JWT_SIGNING_KEYS", "j1:c2VjcmV0LXZhbHVl", "at least 32"},
		{"not base64", "JWT_SIGNING_KEYS", "j1:secret-value!!", "not base64"},
		{"bad mode", "SESSION_DEFAULT_MODE", "cassandra", "SESSION_DEFAULT_MODE"},
		{"bad duration", "SESSION_IDLE_TIMEOUT", "soon", "SESSION_IDLE_TIMEOUT"},
		{"idle past absolute", "SESSION_IDLE_TIMEOUT", "13h", "longer than SESSION_ABSOLUTE_TIMEOUT"},
		{"bad replica name", "REPLICA_NAME", "App 2", "REPLICA_NAME"},
		{"peer dns without port", "PEER_DNS", "app", "PEER_DNS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			m[tc.key] = tc.value
			_, err := loadConfig(env(m))
			if err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.mentions)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") || strings.Contains(err.Error(), "secret-value") {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
}

// TestPeersComeFromOneSource: the replicas are a fixed list (PEERS) or
// found through DNS (PEER_DNS), never both at once; with DNS a replica
// may name itself only as DNS names it.
func TestPeersComeFromOneSource(t *testing.T) {
	m := map[string]string{"SESSION_ENCRYPTION_KEYS": testEncKey, "JWT_SIGNING_KEYS": testJWTKey, "PEER_DNS": "app:8080"}
	c, err := loadConfig(env(m))
	if err != nil || c.PeerDNS != "app:8080" || c.Replica != "" {
		t.Fatalf("PEER_DNS alone: %+v, %v; want it kept and the name left to DNS", c.PeerDNS, err)
	}
	m["PEERS"] = "app2:8080"
	if _, err := loadConfig(env(m)); err == nil || !strings.Contains(err.Error(), "PEERS and PEER_DNS") {
		t.Errorf("PEERS with PEER_DNS: %v, want an error naming both", err)
	}
	delete(m, "PEERS")
	m["REPLICA_NAME"] = "app9"
	if _, err := loadConfig(env(m)); err == nil || !strings.Contains(err.Error(), `REPLICA_NAME="app9" and PEER_DNS`) {
		t.Errorf("REPLICA_NAME with PEER_DNS: %v, want an error naming both", err)
	}
	// Swarm: the name DNS will give the task (compose/swarm.yaml).
	m["REPLICA_NAME"], m["PEER_DNS"] = "app-2", "tasks.app:8080"
	if c, err := loadConfig(env(m)); err != nil || c.Replica != "app-2" {
		t.Errorf("REPLICA_NAME=app-2 with PEER_DNS=tasks.app:8080: %q, %v; want it kept", c.Replica, err)
	}
	m["REPLICA_NAME"] = "web-2"
	if _, err := loadConfig(env(m)); err == nil || !strings.Contains(err.Error(), "app-N") {
		t.Errorf("REPLICA_NAME=web-2 with PEER_DNS=tasks.app:8080: %v, want an error asking for app-N", err)
	}
}

func TestKeyRotationListKeepsOrder(t *testing.T) {
	keys, err := parseKeys("X", "new:"+strings.Split(testEncKey, ":")[1]+", old:"+strings.Split(testJWTKey, ":")[1], 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "new" || keys[1].ID != "old" {
		t.Errorf("keys = %v", keys)
	}
}

func TestRedisReplicationSettings(t *testing.T) {
	base := map[string]string{"SESSION_ENCRYPTION_KEYS": testEncKey, "JWT_SIGNING_KEYS": testJWTKey}
	with := func(extra map[string]string) (config, error) {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return loadConfig(env(m))
	}
	// A lone server has no replica to wait for; behind Sentinels a write
	// waits for one by default.
	if c, err := with(nil); err != nil || c.RedisMinReplicasAck != 0 || len(c.RedisSentinels) != 0 {
		t.Errorf("without Sentinels: acks %d, sentinels %v, %v; want 0, none", c.RedisMinReplicasAck, c.RedisSentinels, err)
	}
	c, err := with(map[string]string{"REDIS_SENTINELS": "sentinel1:26379, sentinel2:26379"})
	if err != nil || c.RedisMinReplicasAck != 1 || len(c.RedisSentinels) != 2 || c.RedisMasterName != "sessions" || c.RedisAckTimeout != 500*time.Millisecond {
		t.Errorf("with Sentinels: %+v, %v; want 2 sentinels, master sessions, 1 ack within 500ms", c, err)
	}
	if c, err := with(map[string]string{"REDIS_SENTINELS": "sentinel1:26379", "REDIS_MIN_REPLICAS_ACK": "0"}); err != nil || c.RedisMinReplicasAck != 0 {
		t.Errorf("REDIS_MIN_REPLICAS_ACK=0: %d, %v; want asynchronous", c.RedisMinReplicasAck, err)
	}
	for k, v := range map[string]string{"REDIS_SENTINELS": "sentinel1", "REDIS_MIN_REPLICAS_ACK": "-1", "REDIS_ACK_TIMEOUT": "soon"} {
		if _, err := with(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want an error naming it", k, v, err)
		}
	}
}
