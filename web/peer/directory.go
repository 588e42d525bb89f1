package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessiondemo/shop/web/session"
)

// Member is one replica a Directory knows.
type Member struct {
	// Name is the replica's name, as it reports it in X-Replica.
	Name string
	// BaseURL is where its internal endpoints are, e.g. "http://172.18.0.5:8080".
	BaseURL string
	// Left is when it stopped being listed, or zero while it is listed.
	Left time.Time
}

// Directory tells which replicas there are. Members returns them sorted
// by name: the ones listed now, and the ones that left lately (with Left
// set), so that the admin page can mark a replica that just went. (When
// one joined, the replica itself says: it knows when it started.)
type Directory interface {
	Members() []Member
}

// Static is a fixed list of replicas: name -> base URL. PEERS sets one,
// and the tests do; without DNS, nobody joins or leaves.
type Static map[string]string

// Members returns the list, sorted by name.
func (s Static) Members() []Member {
	out := make([]Member, 0, len(s))
	for name, base := range s {
		out = append(out, Member{Name: name, BaseURL: base})
	}
	slices.SortFunc(out, byName)
	return out
}

// byName orders members by name, with the numbers names end with compared
// as numbers: app-2 before app-10.
func byName(a, b Member) int { return CompareNames(a.Name, b.Name) }

// CompareNames orders replica names: by what precedes the number they end
// with, then by that number (app-9 before app-10), then as strings.
func CompareNames(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	if na != nb {
		if na < nb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// splitNumber splits the decimal number a name ends with from the rest
// (-1 when there is none).
func splitNumber(name string) (string, int) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' && len(name)-i < 9 {
		i--
	}
	if i == len(name) {
		return name, -1
	}
	n, _ := strconv.Atoi(name[i:])
	return name[:i], n
}

// DNS finds the replicas through a DNS name that resolves to all of them:
// Docker's embedded DNS answers a compose service's name (app) with the
// address of every running container of the service, and a reverse lookup
// of an address with the container's name, which NameFromDNS turns into
// the replica's name. A container that stops leaves the answer at once.
//
// Refresh asks again; Watch does it every few seconds. Safe for
// concurrent use.
type DNS struct {
	host, port string
	// service is the service whose containers' names NameFromDNS reads
	// (app, for app or tasks.app).
	service string
	// Remember is how long a replica that left stays listed, with Left set.
	Remember time.Duration
	// Resolver answers the lookups; nil is the system's resolver for
	// names and its DNS server, asked directly, for addresses.
	Resolver Resolver

	mu      sync.Mutex
	names   map[string]string // address -> replica name, for the listed addresses
	members map[string]*Member
}

// NewDNS returns a directory of the replicas behind hostport ("app:8080").
func NewDNS(hostport string) (*DNS, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("%q is not a DNS name with a port, such as app:8080", hostport)
	}
	// Swarm's task DNS, tasks.app, lists the tasks of the service app.
	service := strings.TrimPrefix(host, "tasks.")
	return &DNS{host: host, service: service, port: port, Remember: time.Minute, names: map[string]string{}, members: map[string]*Member{}}, nil
}

// Service returns the DNS name the directory resolves.
func (d *DNS) Service() string { return d.host }

// Resolver is what DNS needs of a resolver; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

func (d *DNS) resolver() Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	return systemDNS{}
}

// Refresh resolves the name, and names every address again: Docker gives
// a new container the lowest free address, so an address a removed
// replica had soon belongs to another one. A failed lookup keeps the last
// answer (a slow DNS is not every replica leaving); a name that does not
// exist (no replica runs) empties the list. Only IPv4 addresses count, as
// in nginx's resolver (ipv6=off).
func (d *DNS) Refresh(ctx context.Context) error {
	// The absolute name: Docker's DNS answers it at once, where the
	// resolver would first try the search domains upstream.
	all, err := d.resolver().LookupHost(ctx, d.host+".")
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return err
	}
	var addrs []string
	for _, a := range all {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			addrs = append(addrs, a)
		}
	}
	d.mu.Lock()
	previous := d.names
	d.mu.Unlock()
	known := make(map[string]string, len(addrs))
	for _, a := range addrs {
		ptrs, err := d.resolver().LookupAddr(ctx, a)
		switch {
		case err == nil && len(ptrs) > 0:
			known[a] = NameFromDNS(ptrs[0], d.service)
		case previous[a] != "":
			known[a] = previous[a] // asked again on the next refresh
		}
	}

	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names = known
	listed := map[string]bool{}
	for a, name := range known {
		listed[name] = true
		base := "http://" + net.JoinHostPort(a, d.port)
		m, ok := d.members[name]
		switch {
		case !ok || !m.Left.IsZero():
			m = &Member{Name: name, BaseURL: base}
			d.members[name] = m
		default:
			m.BaseURL = base
		}
	}
	for name, m := range d.members {
		switch {
		case listed[name]:
		case m.Left.IsZero():
			m.Left = now
		case now.Sub(m.Left) > d.Remember:
			delete(d.members, name)
		}
	}
	return nil
}

// Watch refreshes every interval until ctx is done. failed, if not nil,
// hears of the first failure after a success (and of nothing more until
// a refresh succeeds again), so a directory that stopped following the
// replicas says so once.
func (d *DNS) Watch(ctx context.Context, every time.Duration, failed func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		rctx, cancel := context.WithTimeout(ctx, every)
		err := d.Refresh(rctx)
		cancel()
		if err != nil && !failing && failed != nil && ctx.Err() == nil {
			failed(err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Members returns the listed replicas and the ones that left within
// Remember, sorted by name.
func (d *DNS) Members() []Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Member, 0, len(d.members))
	for _, m := range d.members {
		out = append(out, *m)
	}
	slices.SortFunc(out, byName)
	return out
}

// SelfName finds this replica's name the way the directory names the
// others: a reverse lookup of each of this machine's addresses, until one
// answers or ctx is done.
func (d *DNS) SelfName(ctx context.Context) (string, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for {
		for _, ia := range ifaddrs {
			ipn, ok := ia.(*net.IPNet)
			if !ok || ipn.IP.To4() == nil || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			if ptrs, err := d.resolver().LookupAddr(ctx, ipn.IP.String()); err == nil && len(ptrs) > 0 {
				return NameFromDNS(ptrs[0], d.service), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no reverse DNS name for this container's addresses: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// composeName is a compose container's name: <project>-<service>-<n>;
// swarmName a Swarm task's: <stack>_<service>.<n>.<task id>.
var (
	composeName = regexp.MustCompile(`-([a-z0-9_]+)-([0-9]+)$`)
	swarmName   = regexp.MustCompile(`(?:^|_)([a-z0-9-]+)\.([0-9]+)\.[a-z0-9]+`)
	unsafeRune  = regexp.MustCompile(`[^a-z0-9_-]+`)
)

// NameFromDNS turns the answer of a reverse lookup into a replica's name.
// Docker answers with the container's name and its network, e.g.
// "sessiondemo-app-2.sessiondemo_default."; the replica of service app is
// then "app-2", whatever the project is called, so names stay short and
// the same in every checkout. A Swarm task ("demo_app.2.k3x....") is
// "app-2" too. Any other answer gives its first label, made safe for a
// session ID (session.ReplicaNamePattern).
func NameFromDNS(ptr, service string) string {
	ptr = strings.ToLower(strings.TrimSuffix(ptr, "."))
	if m := swarmName.FindStringSubmatch(ptr); m != nil && m[1] == service {
		return m[1] + "-" + m[2]
	}
	first, _, _ := strings.Cut(ptr, ".")
	if m := composeName.FindStringSubmatch(first); m != nil && m[1] == service {
		return m[1] + "-" + m[2]
	}
	name := strings.Trim(unsafeRune.ReplaceAllString(first, "-"), "-_")
	if len(name) > 32 {
		name = name[len(name)-32:]
		name = strings.TrimLeft(name, "-_")
	}
	if !session.ValidReplicaName(name) {
		return "replica"
	}
	return name
}
