// Package barrierserver is an HTTP server for tests that proves requests run at the same time:
// its first n requests are answered only once all n are in flight, so callers that take turns
// get an error instead.
package barrierserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server answers "<path> page" (the request's path without its leading slash) to each of its
// first n requests once all n have arrived, and 504 to a request that waited patience without
// the others. Later requests are answered at once.
type Server struct {
	*httptest.Server
	hits atomic.Int32
}

// New starts a Server for n concurrent requests; Close it when done.
func New(n int, patience time.Duration) *Server {
	s := &Server{}
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hits.Add(1) <= int32(n) {
			arrived.Done()
		}
		select {
		case <-all:
			fmt.Fprintf(w, "%s page", strings.TrimPrefix(r.URL.Path, "/"))
		case <-time.After(patience):
			http.Error(w, "the other requests never came: the callers did not run at the same time", http.StatusGatewayTimeout)
		}
	}))
	return s
}

// Hits counts the requests the server received.
func (s *Server) Hits() int { return int(s.hits.Load()) }
