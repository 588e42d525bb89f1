package peer

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// systemDNS is the default Resolver: names through the system's resolver,
// addresses by asking the DNS server of /etc/resolv.conf directly. Go's
// reverse lookup reads /etc/hosts first, and there Docker names a
// container's own address with the container's ID; its DNS server answers
// with the container's name, which is the one the other replicas see.
type systemDNS struct{}

func (systemDNS) LookupHost(ctx context.Context, host string) ([]string, error) {
	return net.DefaultResolver.LookupHost(ctx, host)
}

func (systemDNS) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	server, err := nameserver("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	return queryPTR(ctx, server, addr)
}

// nameserver returns the first nameserver of a resolv.conf, as host:53.
func nameserver(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			return net.JoinHostPort(fields[1], "53"), nil
		}
	}
	return "", fmt.Errorf("%s names no nameserver", path)
}

// queryPTR asks server (host:port) over UDP for the PTR records of addr.
func queryPTR(ctx context.Context, server, addr string) ([]string, error) {
	arpa, err := reverseName(addr)
	if err != nil {
		return nil, err
	}
	name, err := dnsmessage.NewName(arpa)
	if err != nil {
		return nil, err
	}
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}},
	}).Pack()
	if err != nil {
		return nil, err
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Second)
	}
	conn.SetDeadline(deadline)
	if _, err := conn.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		var m dnsmessage.Message
		if err := m.Unpack(buf[:n]); err != nil || m.ID != id {
			continue // not the answer to this question
		}
		if m.RCode != dnsmessage.RCodeSuccess {
			return nil, &net.DNSError{Err: m.RCode.String(), Name: addr, Server: server, IsNotFound: m.RCode == dnsmessage.RCodeNameError}
		}
		var names []string
		for _, a := range m.Answers {
			if ptr, ok := a.Body.(*dnsmessage.PTRResource); ok {
				names = append(names, ptr.PTR.String())
			}
		}
		if len(names) == 0 {
			return nil, &net.DNSError{Err: "no PTR record", Name: addr, Server: server, IsNotFound: true}
		}
		return names, nil
	}
}

// reverseName is the in-addr.arpa name of an IPv4 address.
func reverseName(addr string) (string, error) {
	ip := net.ParseIP(addr).To4()
	if ip == nil {
		return "", errors.New(addr + " is not an IPv4 address")
	}
	return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa.", ip[3], ip[2], ip[1], ip[0]), nil
}
