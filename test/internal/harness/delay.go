package harness

import (
	"io"
	"net"
	"sync"
	"time"
)

// DelayProxy is a TCP proxy on 127.0.0.1 that adds a fixed round-trip time
// in front of an upstream address: every chunk of data is held for half
// the RTT in each direction, and a new connection's first chunk is held one
// RTT more, for the TCP handshake a real network would cost. It stands in
// for `tc netem`, which this machine's kernel lacks.
type DelayProxy struct {
	Addr string
	rtt  time.Duration
	ln   net.Listener
	wg   sync.WaitGroup
}

// StartDelayProxy proxies to upstream ("host:port") with rtt added.
func StartDelayProxy(upstream string, rtt time.Duration) (*DelayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &DelayProxy{Addr: ln.Addr().String(), rtt: rtt, ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, upstream)
		}
	}()
	return p, nil
}

// Close stops accepting; open connections end with their peers.
func (p *DelayProxy) Close() { p.ln.Close(); p.wg.Wait() }

func (p *DelayProxy) serve(client net.Conn, upstream string) {
	server, err := net.DialTimeout("tcp", upstream, 10*time.Second)
	if err != nil {
		client.Close()
		return
	}
	go p.pipe(server, client, p.rtt/2+p.rtt) // the handshake's round trip
	go p.pipe(client, server, p.rtt/2)
}

// pipe copies src to dst, each chunk delivered delay after it was read
// (the first chunk firstDelay after), in order.
func (p *DelayProxy) pipe(dst, src net.Conn, firstDelay time.Duration) {
	type chunk struct {
		data []byte
		due  time.Time
	}
	queue := make(chan chunk, 1024)
	go func() {
		defer dst.Close()
		for c := range queue {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				io.Copy(io.Discard, src)
				return
			}
		}
	}()
	delay := firstDelay
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{append([]byte(nil), buf[:n]...), time.Now().Add(delay)}
			delay = p.rtt / 2
		}
		if err != nil {
			close(queue)
			return
		}
	}
}
