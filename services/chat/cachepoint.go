package chat

import (
	"fmt"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// validateCachePoints checks the prompt cache points of req: each sets
// nothing else and has the type "default", no system and no message is
// made of cache points only, tools made of cache points only are no tools,
// and there are at most [MaxCachePoints] in all.
func validateCachePoints(req *bus.ChatRequest) *requestError {
	total := 0
	count := func(c *bus.CachePoint, field string, args ...any) *requestError {
		if c.Type != bus.CachePointDefault {
			return invalid("%s.cachePoint.type is %q; want %q", fmt.Sprintf(field, args...), c.Type, bus.CachePointDefault)
		}
		if c.TTL != "" && c.TTL != bus.CacheTTL5m && c.TTL != bus.CacheTTL1h {
			return invalid("%s.cachePoint.ttl is %q; want %q, %q or none", fmt.Sprintf(field, args...), c.TTL, bus.CacheTTL5m, bus.CacheTTL1h)
		}
		if total++; total > MaxCachePoints {
			return invalid("the request holds more than %d cache points (system, messages and toolConfig.tools together), the limit", MaxCachePoints)
		}
		return nil
	}
	points := 0
	for i, b := range req.System {
		if b.CachePoint == nil {
			continue
		}
		if otherThanCachePoint(b) {
			return invalid("system[%d] sets cachePoint and another field; a cache point is a block of its own", i)
		}
		if rerr := count(b.CachePoint, "system[%d]", i); rerr != nil {
			return rerr
		}
		points++
	}
	if points > 0 && points == len(req.System) {
		return invalid("system holds only cache points; a cache point follows the text it caches")
	}
	for i, m := range req.Messages {
		points := 0
		for j, b := range m.Content {
			if b.CachePoint == nil {
				continue
			}
			if otherThanCachePoint(b) {
				return invalid("messages[%d].content[%d] sets cachePoint and another field; a cache point is a block of its own", i, j)
			}
			if rerr := count(b.CachePoint, "messages[%d].content[%d]", i, j); rerr != nil {
				return rerr
			}
			points++
		}
		if points > 0 && points == len(m.Content) {
			return invalid("messages[%d] holds only cache points; a cache point follows the content it caches", i)
		}
	}
	if tc := req.ToolConfig; tc != nil {
		points := 0
		for i, t := range tc.Tools {
			if t.CachePoint == nil {
				continue
			}
			if t.ToolSpec != nil {
				return invalid("toolConfig.tools[%d] sets both toolSpec and cachePoint; a cache point is an entry of its own", i)
			}
			if rerr := count(t.CachePoint, "toolConfig.tools[%d]", i); rerr != nil {
				return rerr
			}
			points++
		}
		if points > 0 && points == len(tc.Tools) {
			return invalid("toolConfig.tools holds only cache points; offer at least one tool, or leave toolConfig out")
		}
	}
	return nil
}

// otherThanCachePoint reports whether b sets a field besides CachePoint.
func otherThanCachePoint(b bus.ContentBlock) bool {
	return b.Text != "" || b.Image != nil || b.ToolUse != nil || b.ToolResult != nil || b.ReasoningContent != nil
}

// cachePointsOf reports whether req holds a prompt cache point, and
// whether one asks for a 1-hour cache ([bus.CacheTTL1h]).
func cachePointsOf(req *bus.ChatRequest) (found, hour bool) {
	see := func(c *bus.CachePoint) {
		if c != nil {
			found = true
			hour = hour || c.TTL == bus.CacheTTL1h
		}
	}
	for _, b := range req.System {
		see(b.CachePoint)
	}
	for _, m := range req.Messages {
		for _, b := range m.Content {
			see(b.CachePoint)
		}
	}
	if tc := req.ToolConfig; tc != nil {
		for _, t := range tc.Tools {
			see(t.CachePoint)
		}
	}
	return found, hour
}
