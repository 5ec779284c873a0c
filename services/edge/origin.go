package edge

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// matchOrigin matches one AllowedOrigins entry against an origin's host, or
// against "scheme://host" when the pattern contains "://".
func matchOrigin(pattern, target string) (bool, error) {
	return path.Match(strings.ToLower(pattern), strings.ToLower(target))
}

// originAllowed applies [Config.AllowedOrigins] to r. Requests without an
// Origin header, and same-host requests, are always allowed.
func (s *Service) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.AllowedOrigins) == 0 {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range s.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := matchOrigin(p, target); ok {
			return true
		}
	}
	return false
}
