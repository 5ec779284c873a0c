// Package stack wires configuration to the services: [Dev] runs every
// service in one process around an embedded NATS server (`gatehouse dev`
// and the whole-system tests), and [RunService] runs one service against an
// external NATS server (`gatehouse edge`, `gatehouse chat`, ...).
package stack
