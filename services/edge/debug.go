package edge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// serveDebug serves net/http/pprof on Config.DebugAddr (nothing when it is
// empty) until the returned stop is called.
func (s *Service) serveDebug() (stop func(), err error) {
	if s.cfg.DebugAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", s.cfg.DebugAddr)
	if err != nil {
		return nil, fmt.Errorf("edge: debug listener %s: %w", s.cfg.DebugAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("debug listener stopped", "err", err)
		}
	}()
	s.log.Warn("serving the Go profiler without authentication", "addr", ln.Addr().String())
	return func() { _ = srv.Close(); <-done }, nil
}
