package chat

// CachedDecisions returns how many model allow decisions s holds, fresh or
// not, for tests of the decision cache.
func CachedDecisions(s *Service) int { return s.allowed.len() }
