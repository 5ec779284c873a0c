package meter

import "time"

// SetBackoff shortens the ledger consumer's redelivery delays for tests.
func SetBackoff(s *Service, min, max time.Duration) { s.backoffMin, s.backoffMax = min, max }
