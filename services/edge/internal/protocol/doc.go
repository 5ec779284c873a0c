// Package protocol implements the wire format of the AppSync Events real-time
// WebSocket protocol that the edge speaks: parsing the frames a client sends
// ([ParseFrame]) and encoding the frames the server sends.
//
// Client frames: connection_init, subscribe {id, channel, authorization?},
// unsubscribe {id}, publish {id, channel, events, authorization?}.
//
// Server frames: connection_ack {connectionTimeoutMs}, connection_error
// {errors}, ka, subscribe_success|subscribe_error, unsubscribe_success|
// unsubscribe_error, publish_success {successful, failed}|publish_error,
// data {id, event}, broadcast_error {id, errors} (an event for that
// subscription could not be delivered) and error {errors}. Errors are objects
// {errorType, message}; clients branch on errorType, so the values are the
// constants ErrType*.
package protocol
