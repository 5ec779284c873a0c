package provider

// bytesPerToken is the rule of thumb used to estimate tokens of a provider
// that reports none: about four bytes of English text per token.
const bytesPerToken = 4

// EstimateTokens estimates the tokens of text: one per started
// [bytesPerToken] bytes.
func EstimateTokens(text string) int64 {
	return int64((len(text) + bytesPerToken - 1) / bytesPerToken)
}

// EstimateInput estimates the input tokens of call (system and messages).
func EstimateInput(call *Call) int64 {
	var n int64
	for _, s := range call.System {
		n += EstimateTokens(s)
	}
	for _, m := range call.Messages {
		for _, b := range m.Content {
			n += EstimateTokens(b.Text)
		}
	}
	return n
}
