package config

import (
	"errors"
	"strings"
	"time"
)

// Meter configures the ledger.
type Meter struct {
	// DatabaseURL selects Postgres ("postgres://..."); also read from
	// DATABASE_URL. Empty uses SQLite at SQLitePath. Secret: masked in output.
	DatabaseURL string `yaml:"database_url"`
	// SQLitePath is the SQLite ledger file. Default DataDir/ledger.db.
	SQLitePath string `yaml:"sqlite_path"`
	// BatchSize is the most records per ledger transaction. Default 500.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits for its batch. Default 200ms.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

func (m Meter) validate() []error {
	var errs []error
	if m.DatabaseURL != "" && !strings.HasPrefix(m.DatabaseURL, "postgres://") && !strings.HasPrefix(m.DatabaseURL, "postgresql://") {
		errs = append(errs, errors.New("meter.database_url: must start with postgres:// (leave empty for SQLite)"))
	}
	if m.BatchSize < 1 {
		errs = append(errs, errors.New("meter.batch_size: must be at least 1"))
	}
	if m.FlushInterval <= 0 {
		errs = append(errs, errors.New("meter.flush_interval: must be above 0"))
	}
	return errs
}
