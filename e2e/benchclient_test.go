package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// rawConn is the benchmark's HTTP/1.1 client: one keep-alive connection
// that writes a request as bytes and reads the answer's status, its
// Set-Cookie headers and a Content-Length body, nothing more. net/http's
// client took about a quarter of this machine's two cores at the rate the
// stack serves (its goroutines, header maps and per-request allocations),
// CPU the stack under test then did not have; this one takes a fraction
// of that. It is for this stack's answers (small JSON with a
// Content-Length), not a general client.
type rawConn struct {
	addr string // host:port
	conn net.Conn
	r    *bufio.Reader
	buf  bytes.Buffer
}

// rawAnswer is what rawConn read of an answer.
type rawAnswer struct {
	status  int
	cookies []string // each Set-Cookie's "name=value"
	body    []byte
}

// do sends one request and reads its answer, dialing first if needed.
// On any error the connection is closed; the next call dials again.
func (c *rawConn) do(method, path, cookie, body string) (rawAnswer, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return rawAnswer{}, err
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	a, closeAfter, err := c.roundTrip(method, path, cookie, body)
	if err != nil || closeAfter {
		c.close()
	}
	return a, err
}

func (c *rawConn) roundTrip(method, path, cookie, body string) (a rawAnswer, closeAfter bool, err error) {
	c.buf.Reset()
	fmt.Fprintf(&c.buf, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sessiondemo-bench\r\n", method, path, c.addr)
	if cookie != "" {
		c.buf.WriteString("Cookie: " + cookie + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&c.buf, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	c.buf.WriteString("\r\n" + body)
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(c.buf.Bytes()); err != nil {
		return a, true, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return a, true, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return a, true, fmt.Errorf("not an HTTP answer: %q", line)
	}
	if a.status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return a, true, fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return a, true, err
		}
		h := strings.TrimRight(string(line), "\r\n")
		if h == "" {
			break
		}
		name, value, _ := strings.Cut(h, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			if length, err = strconv.Atoi(value); err != nil {
				return a, true, fmt.Errorf("Content-Length %q", value)
			}
		case "transfer-encoding":
			return a, true, errors.New("a chunked answer: this client reads only Content-Length bodies")
		case "connection":
			closeAfter = strings.EqualFold(value, "close")
		case "set-cookie":
			nv, _, _ := strings.Cut(value, ";")
			if strings.Contains(strings.ToLower(value), "max-age=0") || strings.Contains(strings.ToLower(value), "max-age=-1") {
				nv, _, _ = strings.Cut(nv, "=")
				nv += "=" // expired: an empty value
			}
			a.cookies = append(a.cookies, nv)
		}
	}
	if length < 0 {
		return a, true, errors.New("an answer without Content-Length")
	}
	a.body = make([]byte, length)
	if _, err := io.ReadFull(c.r, a.body); err != nil {
		return a, true, err
	}
	return a, closeAfter, nil
}

func (c *rawConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// perfSession is one connection's session: the cookies it sends (nginx's
// lb_route too) and, for writes, how many items it added since its cart
// was last cleared.
type perfSession struct {
	cookies map[string]string
	header  string
	adds    int
}

// update takes the cookies an answer set ("name=value"; an empty value
// removes one).
func (s *perfSession) update(cookies []string) {
	if len(cookies) == 0 {
		return
	}
	for _, nv := range cookies {
		name, value, _ := strings.Cut(nv, "=")
		if value == "" {
			delete(s.cookies, name)
		} else {
			s.cookies[name] = value
		}
	}
	s.rebuild()
}

// pin gives every session the first one's lb_route cookie, so nginx's
// sticky pool sends all of them to the first one's replica.
func pin(sessions []*perfSession) {
	for _, s := range sessions {
		s.cookies["lb_route"] = sessions[0].cookies["lb_route"]
		s.rebuild()
	}
}

// rebuild writes the Cookie header from the cookies.
func (s *perfSession) rebuild() {
	var parts []string
	for name, v := range s.cookies {
		parts = append(parts, name+"="+v)
	}
	sort.Strings(parts)
	s.header = strings.Join(parts, "; ")
}
