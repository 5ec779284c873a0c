package chat

// CachedDecisions returns how many model allow decisions s holds, fresh or
// not, for tests of the decision cache.
func CachedDecisions(s *Service) int { return s.allowed.len() }

// CacheKeyAbsent reports whether s's index of the cache's keys answers key
// as certainly absent (false with the index off or not built).
func CacheKeyAbsent(s *Service, key string) bool {
	return s.cacheKeys != nil && s.cacheKeys.Absent(key)
}

// EarlyCancels returns how many cancels s holds for requests it has not
// started.
func EarlyCancels(s *Service) int {
	s.flights.mu.Lock()
	defer s.flights.mu.Unlock()
	return len(s.flights.early)
}
