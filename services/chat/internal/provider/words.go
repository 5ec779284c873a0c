package provider

import "unicode"

// SplitWords splits text into word chunks, each word carrying the
// whitespace that precedes it, so that the chunks concatenate to text:
// "hello there" is "hello", " there". Leading whitespace joins the first
// chunk and trailing whitespace the last. Text without a word is one chunk;
// empty text is none.
func SplitWords(text string) []string {
	if text == "" {
		return nil
	}
	chunks := make([]string, 0, max(CountWords(text), 1))
	start := 0
	spaceStart := -1 // start of the current whitespace run, -1 outside one
	seenWord := false
	for i, r := range text {
		if unicode.IsSpace(r) {
			if spaceStart < 0 {
				spaceStart = i
			}
			continue
		}
		if spaceStart >= 0 && seenWord {
			chunks = append(chunks, text[start:spaceStart])
			start = spaceStart
		}
		spaceStart = -1
		seenWord = true
	}
	return append(chunks, text[start:])
}

// CountWords returns the number of whitespace-separated words in text.
func CountWords(text string) int {
	n := 0
	inWord := false
	for _, r := range text {
		if unicode.IsSpace(r) {
			inWord = false
		} else if !inWord {
			inWord = true
			n++
		}
	}
	return n
}
