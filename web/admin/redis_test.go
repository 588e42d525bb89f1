package admin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sessiondemo/shop/web/admin"
	"github.com/sessiondemo/shop/web/peer"
	"github.com/sessiondemo/shop/web/webtest"
)

// fakeRedis is a session store of three nodes and three Sentinels that
// records the shutdowns asked of it.
type fakeRedis struct {
	mu       sync.Mutex
	primary  string
	shutdown []string
}

func (f *fakeRedis) Topology(context.Context) (admin.RedisTopology, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := admin.RedisTopology{Primary: f.primary}
	for _, n := range []string{"redis1", "redis2", "redis3"} {
		role := admin.RoleReplica
		if n == f.primary {
			role = admin.RolePrimary
		}
		t.Nodes = append(t.Nodes, admin.RedisNodeStatus{Name: n, Role: role, State: admin.StateUp})
	}
	for _, s := range []string{"sentinel1", "sentinel2", "sentinel3"} {
		t.Sentinels = append(t.Sentinels, admin.ComponentStatus{Name: s, State: admin.StateUp})
	}
	t.Sentinels[2].State = admin.StateDown
	return t, nil
}

func (f *fakeRedis) Shutdown(ctx context.Context, node string, kill bool) (string, error) {
	t, _ := f.Topology(ctx)
	if node == admin.RolePrimary {
		node = t.Primary
	}
	if !slices.Contains(t.NodeNames(), node) {
		return "", &admin.UnknownNodeError{Node: node, Known: t.NodeNames()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	verb := "restart"
	if kill {
		verb = "kill"
	}
	f.shutdown = append(f.shutdown, verb+" "+node)
	return node, nil
}

func (f *fakeRedis) DropReplicaLinks(context.Context, string) error { return nil }

func TestRedisNodesAndTheirControls(t *testing.T) {
	redis := &fakeRedis{primary: "redis2"}
	srv := httptest.NewServer(webtest.Replica(t, "app1", admin.Options{
		User: "admin", Password: testAdminPassword, InternalKey: testInternalKey, Peers: peer.Static{}, Redis: redis,
	}))
	t.Cleanup(srv.Close)

	_, body := do(t, "GET", srv.URL+"/api/admin/status", "", nil)
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.RedisPrimary != "redis2" || len(st.RedisNodes) != 3 || st.RedisNodes[1].Role != admin.RolePrimary || len(st.Sentinels) != 3 || st.Sentinels[2].State != admin.StateDown {
		t.Errorf("status: primary %q, nodes %+v, sentinels %+v; want redis2 primary of three, sentinel3 down", st.RedisPrimary, st.RedisNodes, st.Sentinels)
	}
	if !strings.Contains(body, `"redis_primary":"redis2"`) {
		t.Errorf("the status JSON does not name the primary as redis_primary: %s", body)
	}
	_, page := do(t, "GET", srv.URL+"/admin/topology", "", nil)
	for _, want := range []string{`data-node="redis2" data-role="primary"`, `data-node="redis1" data-role="replica"`, `data-testid="node-sentinel3" data-state="down"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the topology lacks %s", want)
		}
	}

	auth := map[string]string{"Authorization": basic("admin", testAdminPassword), "Content-Type": "application/json"}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/api/admin/redis/restart", 202},
		{"/api/admin/redis/primary/kill", 202},
		{"/api/admin/redis/redis3/kill", 202},
		{"/api/admin/redis/redis3/restart", 202},
		{"/api/admin/redis/redis9/kill", 404},
		{"/api/admin/redis/redis3/explode", 404},
	} {
		if resp, body := do(t, "POST", srv.URL+c.path, "", auth); resp.StatusCode != c.status {
			t.Errorf("POST %s = %d %s, want %d", c.path, resp.StatusCode, body, c.status)
		}
	}
	if resp, _ := do(t, "POST", srv.URL+"/api/admin/redis/primary/kill", "", nil); resp.StatusCode != 404 {
		t.Errorf("kill the primary without credentials = %d, want 404", resp.StatusCode)
	}
	want := []string{"restart redis2", "kill redis2", "kill redis3", "restart redis3"}
	if !slices.Equal(redis.shutdown, want) {
		t.Errorf("shutdowns = %v, want %v", redis.shutdown, want)
	}
}
