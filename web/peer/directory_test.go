package peer

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeDNS answers like Docker's embedded DNS: hosts lists the addresses of
// the service, ptr the container name of each address.
type fakeDNS struct {
	hosts []string
	ptr   map[string]string
}

func (f *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	if len(f.hosts) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return f.hosts, nil
}

func (f *fakeDNS) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if n, ok := f.ptr[addr]; ok {
		return []string{n}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

// TestDNSFollowsScaling: the replicas are named from the reverse lookup
// of each address; one that joins is listed at once; one that leaves is
// kept with Left set, then forgotten; one that comes back is listed again.
func TestDNSFollowsScaling(t *testing.T) {
	f := &fakeDNS{
		hosts: []string{"10.0.0.2", "10.0.0.3"},
		ptr: map[string]string{
			"10.0.0.2": "sessiondemo-app-1.sessiondemo_default.",
			"10.0.0.3": "sessiondemo-app-2.sessiondemo_default.",
			"10.0.0.4": "sessiondemo-app-3.sessiondemo_default.",
		},
	}
	d, err := NewDNS("app:8080")
	if err != nil {
		t.Fatal(err)
	}
	d.Resolver = f
	refresh := func() []Member {
		t.Helper()
		if err := d.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		return d.Members()
	}
	ms := refresh()
	if len(ms) != 2 || ms[0].Name != "app-1" || ms[1].Name != "app-2" || ms[1].BaseURL != "http://10.0.0.3:8080" {
		t.Fatalf("first look = %+v, want app-1 and app-2 at their addresses", ms)
	}

	f.hosts = []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}
	if ms = refresh(); len(ms) != 3 || ms[2].Name != "app-3" || !ms[2].Left.IsZero() {
		t.Fatalf("after scale-out = %+v, want app-3 listed", ms)
	}

	f.hosts = []string{"10.0.0.2", "10.0.0.4"}
	ms = refresh()
	if len(ms) != 3 || ms[1].Name != "app-2" || ms[1].Left.IsZero() || !ms[2].Left.IsZero() {
		t.Fatalf("after app-2 left = %+v, want it kept with Left set", ms)
	}
	c := NewClient("app-1", d, "pw", 0)
	if got := c.Names(); len(got) != 2 || got[1] != "app-3" || c.Has("app-2") || !c.Has("app-3") {
		t.Errorf("client: names %v, has app-2 %v; want app-1, app-3 and no app-2", got, c.Has("app-2"))
	}
	d.Remember = 0
	if ms = refresh(); len(ms) != 2 {
		t.Fatalf("with nothing remembered = %+v, want app-2 forgotten", ms)
	}

	f.hosts = []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}
	if ms = refresh(); len(ms) != 3 || ms[1].Name != "app-2" || !ms[1].Left.IsZero() {
		t.Fatalf("after app-2 came back = %+v, want it listed again", ms)
	}
	// Docker gives the next container a freed address: the name follows.
	f.ptr["10.0.0.3"] = "sessiondemo-app-5.sessiondemo_default."
	ms = refresh()
	if c := NewClient("app-1", d, "pw", 0); !c.Has("app-5") || c.Has("app-2") {
		t.Errorf("after 10.0.0.3 became app-5: %+v, want app-5 listed and app-2 gone", ms)
	}
	f.hosts = nil
	refresh()
	if ms = refresh(); len(ms) != 0 {
		t.Errorf("with no replica running and nothing remembered = %+v, want none", ms)
	}
}

// TestCompareNames: the number a name ends with counts as a number.
func TestCompareNames(t *testing.T) {
	names := []string{"app-10", "app-2", "lb", "app-1", "app-9", "app"}
	slices.SortFunc(names, CompareNames)
	if want := []string{"app", "app-1", "app-2", "app-9", "app-10", "lb"}; !slices.Equal(names, want) {
		t.Errorf("sorted %v, want %v", names, want)
	}
}

// TestSwarmTaskDNSNamesTheService: PEER_DNS=tasks.app:8080 (Swarm's task
// DNS) names its replicas after the service app, as app:8080 does.
func TestSwarmTaskDNSNamesTheService(t *testing.T) {
	d, err := NewDNS("tasks.app:8080")
	if err != nil {
		t.Fatal(err)
	}
	d.Resolver = &fakeDNS{
		hosts: []string{"10.0.1.7", "10.0.1.9"},
		ptr: map[string]string{
			"10.0.1.7": "demo_app.1.k3xq0vu8ptw1.demo_default.",
			"10.0.1.9": "demo_app.2.a9zq0vu8ptw1.demo_default.",
		},
	}
	if err := d.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms := d.Members()
	if len(ms) != 2 || ms[0].Name != "app-1" || ms[1].Name != "app-2" || ms[1].BaseURL != "http://10.0.1.9:8080" {
		t.Errorf("tasks.app = %+v, want app-1 and app-2 at their addresses", ms)
	}
}

// TestNameFromDNS: compose and Swarm container names give service-number,
// whatever the project; anything else its first label, made safe.
func TestNameFromDNS(t *testing.T) {
	for ptr, want := range map[string]string{
		"sessiondemo-app-2.sessiondemo_default.":                           "app-2",
		"sessiondemo-e2e-0a1b2c3d-app-12.sessiondemo-e2e-0a1b2c3d_default": "app-12",
		"demo_app.3.k3xq0vu8ptw1.demo_default.":                            "app-3",
		"sessiondemo-lb-1.sessiondemo_default.":                            "sessiondemo-lb-1",
		"Web_Server.local.":                                                "web_server",
		"a-very-long-container-name-that-goes-on-and-on.net.":              "ntainer-name-that-goes-on-and-on",
		"...": "replica",
	} {
		if got := NameFromDNS(ptr, "app"); got != want {
			t.Errorf("NameFromDNS(%q) = %q, want %q", ptr, got, want)
		}
	}
}

// TestQueryPTRAsksTheServer: the reverse lookup goes to the DNS server
// (not /etc/hosts, where Docker names a container's own address with its
// ID) and returns the PTR names. A lost question is asked again, an
// answer to another question is ignored, a truncated answer is an error
// and a name error is a not-found DNSError.
func TestQueryPTRAsksTheServer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var asked atomic.Int32
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var q dnsmessage.Message
			if q.Unpack(buf[:n]) != nil || len(q.Questions) != 1 {
				continue
			}
			if asked.Add(1) == 1 {
				continue // the first question is lost: it must be asked again
			}
			a := dnsmessage.Message{Header: dnsmessage.Header{ID: q.ID, Response: true}, Questions: q.Questions}
			// A stray answer to another question comes first; it must be ignored.
			stray := a
			stray.Header.ID = q.ID + 1
			out, _ := stray.Pack()
			pc.WriteTo(out, from)
			if q.Questions[0].Name.String() == "6.0.18.172.in-addr.arpa." {
				a.Truncated = true
			} else if q.Questions[0].Name.String() == "5.0.18.172.in-addr.arpa." && q.Questions[0].Type == dnsmessage.TypePTR {
				a.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Questions[0].Name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET, TTL: 600},
					Body:   &dnsmessage.PTRResource{PTR: dnsmessage.MustNewName("sessiondemo-app-2.sessiondemo_default.")},
				}}
			} else {
				a.RCode = dnsmessage.RCodeNameError
			}
			out, _ = a.Pack()
			pc.WriteTo(out, from)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	names, err := queryPTR(ctx, pc.LocalAddr().String(), "172.18.0.5")
	if err != nil || len(names) != 1 || NameFromDNS(names[0], "app") != "app-2" {
		t.Errorf("PTR of 172.18.0.5 = %v, %v; want sessiondemo-app-2..., which names app-2", names, err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the server was asked %d times, want 2 (the first question was lost)", n)
	}
	if _, err := queryPTR(ctx, pc.LocalAddr().String(), "172.18.0.6"); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("a truncated answer: %v, want an error saying so", err)
	}
	var dnsErr *net.DNSError
	if _, err := queryPTR(ctx, pc.LocalAddr().String(), "172.18.0.9"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("PTR of an unknown address: %v, want a not-found DNSError", err)
	}
}
