package pgtest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections on a loopback port to a PostgreSQL server,
// so that a test can make the database unreachable for the stores that
// connect through it (Cut) while the server keeps running for everyone
// else, and bring it back (Restore).
type Proxy struct {
	ln              net.Listener
	network, target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	sends atomic.Int64
}

// Sends counts the writes clients made through the proxy so far. A client
// that sends its messages together and then waits for the answer (one
// round trip) makes one write: the difference across a call counts its
// round trips.
func (p *Proxy) Sends() int64 { return p.sends.Load() }

// countingWriter counts the writes to w.
type countingWriter struct {
	w net.Conn
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	c.n.Add(1)
	return c.w.Write(b)
}

// NewProxy starts a proxy to the server of dsn and returns it with a DSN
// that connects through it. It stops when t ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	network, address, err := target(dsn)
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{ln: ln, network: network, target: address, conns: map[net.Conn]struct{}{}}
	through, err := withAddress(dsn, "127.0.0.1", ln.Addr().(*net.TCPAddr).Port)
	if err != nil {
		_ = ln.Close()
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p, through
}

// Cut closes every connection through the proxy and refuses new ones (they
// are accepted and closed at once) until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

// track registers c, or reports false (and closes c) while cut.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	_ = c.Close()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(client) {
			continue
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

// forward copies both ways between client and a new connection to the
// server until either side closes or the proxy cuts them.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	server, err := net.Dial(p.network, p.target)
	if err != nil {
		return
	}
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(countingWriter{server, &p.sends}, client)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, server)
		done <- struct{}{}
	}()
	<-done
	// Closing both ends (deferred) ends the other copy.
	_ = client.Close()
	_ = server.Close()
	<-done
}
