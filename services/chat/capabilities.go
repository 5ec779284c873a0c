package chat

// Capabilities a model of the catalog may lack ([Model.NoVision],
// [Model.NoTools]), as logged when a fallback is skipped.
const (
	capabilityVision = "vision"
	capabilityTools  = "tools"
)

// needs is what a request asks of a model besides text, learned while
// validating it.
type needs struct {
	vision   bool // it holds an image block
	imageURL bool // an image is given by URL, for the provider to fetch
	tools    bool // it offers tools or holds toolUse or toolResult blocks
}

// lacking returns the capability ([capabilityVision], [capabilityTools])
// model m lacks for a request with needs n, or "" when m has them all.
func (n needs) lacking(m *Model) string {
	switch {
	case n.vision && m.NoVision:
		return capabilityVision
	case n.tools && m.NoTools:
		return capabilityTools
	}
	return ""
}

// validateCapabilities refuses a request with needs n that model m, by
// its catalog entry, cannot serve.
func validateCapabilities(n needs, m *Model) *requestError {
	switch n.lacking(m) {
	case capabilityVision:
		return invalid("model %s does not read images (chat.models[].vision is false): send text only or use a model that does", m.ID)
	case capabilityTools:
		return invalid("model %s does not call tools (chat.models[].tools is false): send no tools, tool calls or tool results, or use a model that does", m.ID)
	}
	return nil
}
