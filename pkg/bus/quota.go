package bus

import "time"

// QuotaStateMaxAge is how long the quota bucket keeps a subject's state
// after its last change. An older subject is rebuilt from the ledger,
// which covers the longest quota window (a calendar month).
const QuotaStateMaxAge = 35 * 24 * time.Hour

// QuotaBucket is the name of the JetStream KV bucket holding quota state,
// one key per subject (API key, user or tenant), shared by every meter
// replica and updated by compare-and-set.
func (s Subjects) QuotaBucket() string { return s.streamName("QUOTA") }
