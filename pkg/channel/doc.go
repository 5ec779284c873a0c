// Package channel implements the AppSync Events channel grammar that
// Gatehouse speaks: parsing and validating channel paths, wildcard matching,
// and the one-to-one mapping between a channel and a NATS subject.
//
// A channel is 1 to [MaxSegments] segments separated by "/". Each segment is
// 1 to [MaxSegmentLen] characters of [A-Za-z0-9-] that starts and ends with a
// letter or digit. A leading and a trailing "/" are tolerated. A subscription
// may end in "/*", which matches the channel and everything below it.
//
// Because every accepted segment is a safe NATS token, nothing a client sends
// can put ".", "*", ">" or whitespace into a subject: [Channel.Subject] is the
// only way a channel becomes a subject, and it only accepts parsed channels.
package channel
