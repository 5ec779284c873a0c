package bus

// ErrTypeForbidden is the error event type of a chat request the caller
// may not make: authz refused the model for the caller's plan, groups or
// API key scope. The message names the model and authz's reason; the edge
// answers it over HTTP with 403.
const ErrTypeForbidden = "forbidden"
