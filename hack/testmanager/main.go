// Command testmanager is the real manager (package manager, as the manager binary runs it) with
// the benchmark's and the crash test's workflows added (package internal/testflows). The crash
// test gives the ledger file's path in CENTAUR_CHAOS_LEDGER. With --pprof-bind-address it also
// serves net/http/pprof and a CPU profile that the benchmark starts and stops around a figure.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	runtimepprof "runtime/pprof"
	"sync"
	"time"

	"github.com/centaur-dev/workflow-operator/internal/testflows"
	"github.com/centaur-dev/workflow-operator/manager"
)

func main() {
	var o manager.Options
	manager.BindFlags(flag.CommandLine, &o)
	pprofAddr := flag.String("pprof-bind-address", "", "Address to serve net/http/pprof and /cpuprofile/{start,stop} on (empty: off).")
	flag.Parse()
	if *pprofAddr != "" {
		go servePprof(*pprofAddr)
	}
	if err := manager.Run(o, testflows.All(os.Getenv(testflows.LedgerEnv))...); err != nil {
		fmt.Fprintln(os.Stderr, "testmanager:", err)
		os.Exit(1)
	}
}

// servePprof serves the profiling endpoints on addr until the process exits.
func servePprof(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var cpu cpuProfile
	mux.HandleFunc("POST /cpuprofile/start", cpu.start)
	mux.HandleFunc("POST /cpuprofile/stop", cpu.stop)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "testmanager: serve pprof:", err)
	}
}

// cpuProfile is a CPU profile started and stopped by requests, so that it covers exactly one
// figure of the benchmark (net/http/pprof's profile needs its duration up front).
type cpuProfile struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (p *cpuProfile) start(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf != nil {
		http.Error(w, "a CPU profile is already running", http.StatusConflict)
		return
	}
	buf := &bytes.Buffer{}
	if err := runtimepprof.StartCPUProfile(buf); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.buf = buf
}

func (p *cpuProfile) stop(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buf == nil {
		http.Error(w, "no CPU profile is running", http.StatusConflict)
		return
	}
	runtimepprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(p.buf.Bytes())
	p.buf = nil
}
