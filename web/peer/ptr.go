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

// ptrAttempt bounds one question: a lost datagram is asked again, up to
// ptrAttempts times, within the caller's deadline.
const (
	ptrAttempt  = time.Second
	ptrAttempts = 3
)

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
	question := dnsmessage.Question{Name: name, Type: dnsmessage.TypePTR, Class: dnsmessage.ClassINET}
	var lastErr error
	for range ptrAttempts {
		names, err := askPTR(ctx, server, addr, question)
		var dnsErr *net.DNSError
		if err == nil || errors.As(err, &dnsErr) || ctx.Err() != nil {
			return names, err
		}
		lastErr = err // no answer in time: ask again
	}
	return nil, lastErr
}

// askPTR sends one question and reads its answer, for at most ptrAttempt.
func askPTR(ctx context.Context, server, addr string, question dnsmessage.Question) ([]string, error) {
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	q, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{question},
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
	deadline := time.Now().Add(ptrAttempt)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
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
		if err := m.Unpack(buf[:n]); err != nil || m.ID != id || !m.Response ||
			len(m.Questions) != 1 || m.Questions[0] != question {
			continue // not the answer to this question
		}
		if m.Truncated {
			return nil, &net.DNSError{Err: "answer truncated", Name: addr, Server: server}
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
