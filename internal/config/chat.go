package config

import (
	"errors"
	"time"
)

// Chat configures the chat workers.
type Chat struct {
	// Concurrency is how many requests one replica handles at once. Default 32.
	Concurrency int `yaml:"concurrency"`
	// EchoDelay paces the echo model's chunks. Default 0 (as fast as possible);
	// `gatehouse dev` uses 30ms so streaming is visible.
	EchoDelay time.Duration `yaml:"echo_delay"`
}

func (c Chat) validate() []error {
	var errs []error
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("chat.concurrency: must be at least 1"))
	}
	if c.EchoDelay < 0 {
		errs = append(errs, errors.New("chat.echo_delay: must not be negative"))
	}
	return errs
}
