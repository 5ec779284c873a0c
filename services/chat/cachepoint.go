package chat

import (
	"fmt"
	"strings"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// cacheUse is what a request asks of the upstream's prompt cache.
type cacheUse struct {
	points int  // cache points in the request
	hour   bool // one asks for a 1-hour cache ([bus.CacheTTL1h])
}

// validateCachePoints checks the prompt cache points of req: each sets
// nothing else and has the type "default" and a known TTL, no system and
// no message is made of cache points only, tools made of cache points
// only are no tools, and there are at most [MaxCachePoints] in all. It
// returns what req asks of the cache.
func validateCachePoints(req *bus.ChatRequest) (cacheUse, *requestError) {
	var use cacheUse
	// see checks c, the cache point of field (if any).
	see := func(c *bus.CachePoint, field string) *requestError {
		if c.Type != bus.CachePointDefault {
			return invalid("%s.cachePoint.type is %q; want %q", field, c.Type, bus.CachePointDefault)
		}
		if c.TTL != "" && c.TTL != bus.CacheTTL5m && c.TTL != bus.CacheTTL1h {
			return invalid("%s.cachePoint.ttl is %q; want %q, %q or none", field, c.TTL, bus.CacheTTL5m, bus.CacheTTL1h)
		}
		if use.points++; use.points > MaxCachePoints {
			return invalid("the request holds more than %d cache points (system, messages and toolConfig.tools together), the limit", MaxCachePoints)
		}
		use.hour = use.hour || c.TTL == bus.CacheTTL1h
		return nil
	}
	// blocks checks the cache points of the content blocks of where.
	blocks := func(bs []bus.ContentBlock, where, after string) *requestError {
		points := 0
		for j, b := range bs {
			if b.CachePoint == nil {
				continue
			}
			field := fmt.Sprintf("%s[%d]", where, j)
			if otherThanCachePoint(b) {
				return invalid("%s sets cachePoint and another field; a cache point is a block of its own", field)
			}
			if rerr := see(b.CachePoint, field); rerr != nil {
				return rerr
			}
			points++
		}
		if points > 0 && points == len(bs) {
			return invalid("%s holds only cache points; a cache point follows the %s it caches", strings.TrimSuffix(where, ".content"), after)
		}
		return nil
	}
	if rerr := blocks(req.System, "system", "text"); rerr != nil {
		return use, rerr
	}
	for i, m := range req.Messages {
		if rerr := blocks(m.Content, fmt.Sprintf("messages[%d].content", i), "content"); rerr != nil {
			return use, rerr
		}
	}
	if tc := req.ToolConfig; tc != nil {
		points := 0
		for i, t := range tc.Tools {
			if t.CachePoint == nil {
				continue
			}
			if t.ToolSpec != nil {
				return use, invalid("toolConfig.tools[%d] sets both toolSpec and cachePoint; a cache point is an entry of its own", i)
			}
			if rerr := see(t.CachePoint, fmt.Sprintf("toolConfig.tools[%d]", i)); rerr != nil {
				return use, rerr
			}
			points++
		}
		if points > 0 && points == len(tc.Tools) {
			return use, invalid("toolConfig.tools holds only cache points; offer at least one tool, or leave toolConfig out")
		}
	}
	return use, nil
}

// otherThanCachePoint reports whether b sets a field besides CachePoint.
func otherThanCachePoint(b bus.ContentBlock) bool {
	return b.Text != "" || b.Image != nil || b.ToolUse != nil || b.ToolResult != nil || b.ReasoningContent != nil
}
