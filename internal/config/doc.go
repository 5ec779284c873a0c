// Package config loads Gatehouse's configuration: built-in defaults, then one
// YAML file, then GATEHOUSE_ environment variables ("__" separates nesting
// levels: GATEHOUSE_EDGE__ADDR sets edge.addr), then command-line flags.
// An unknown key anywhere is an error, never silently ignored.
package config
