package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	brdocument "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// contentBlock maps a message block to Bedrock's: text, image, toolUse,
// toolResult, reasoningContent or cachePoint. An image keeps its format (chat allows only Converse's) and
// its bytes, which the SDK sends base64.
func contentBlock(c bus.ContentBlock) (types.ContentBlock, error) {
	switch {
	case c.CachePoint != nil:
		return &types.ContentBlockMemberCachePoint{Value: cachePoint(c.CachePoint)}, nil
	case c.Image != nil && c.Image.Source.URL != "":
		return nil, errors.New("bedrock cannot fetch an image from a URL; it needs the bytes")
	case c.Image != nil:
		return &types.ContentBlockMemberImage{Value: types.ImageBlock{
			Format: types.ImageFormat(c.Image.Format),
			Source: &types.ImageSourceMemberBytes{Value: c.Image.Source.Bytes},
		}}, nil
	case c.ToolUse != nil:
		input, err := jsonDocument(c.ToolUse.Input)
		if err != nil {
			return nil, fmt.Errorf("toolUse %q input: %w", c.ToolUse.ToolUseID, err)
		}
		return &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
			ToolUseId: aws.String(c.ToolUse.ToolUseID),
			Name:      aws.String(c.ToolUse.Name),
			Input:     input,
		}}, nil
	case c.ReasoningContent != nil && c.ReasoningContent.ReasoningText != nil:
		t := c.ReasoningContent.ReasoningText
		rt := types.ReasoningTextBlock{Text: aws.String(t.Text)}
		if t.Signature != "" {
			rt.Signature = aws.String(t.Signature)
		}
		return &types.ContentBlockMemberReasoningContent{Value: &types.ReasoningContentBlockMemberReasoningText{Value: rt}}, nil
	case c.ReasoningContent != nil:
		return &types.ContentBlockMemberReasoningContent{Value: &types.ReasoningContentBlockMemberRedactedContent{Value: c.ReasoningContent.RedactedContent}}, nil
	case c.ToolResult != nil:
		r := types.ToolResultBlock{
			ToolUseId: aws.String(c.ToolResult.ToolUseID),
			Status:    types.ToolResultStatus(c.ToolResult.Status),
		}
		for i, rc := range c.ToolResult.Content {
			if len(rc.JSON) == 0 {
				r.Content = append(r.Content, &types.ToolResultContentBlockMemberText{Value: rc.Text})
				continue
			}
			doc, err := jsonDocument(rc.JSON)
			if err != nil {
				return nil, fmt.Errorf("toolResult %q content[%d] json: %w", c.ToolResult.ToolUseID, i, err)
			}
			r.Content = append(r.Content, &types.ToolResultContentBlockMemberJson{Value: doc})
		}
		return &types.ContentBlockMemberToolResult{Value: r}, nil
	}
	return &types.ContentBlockMemberText{Value: c.Text}, nil
}

// toolConfig maps the call's tools to Bedrock's toolConfig; nil when the
// call offers none.
//
// Converse has no "none" tool choice. For [bus.ToolChoice] None the tools
// are left out, so the model cannot call one, when the conversation holds
// no toolUse or toolResult block; when it does, Bedrock refuses a request
// without toolConfig, so the tools are sent with no toolChoice (the model
// chooses, as with auto).
func toolConfig(call *Call) (*types.ToolConfiguration, error) {
	tc := call.Tools
	if tc == nil || len(tc.Tools) == 0 {
		return nil, nil
	}
	choice := tc.ToolChoice
	if choice != nil && choice.None != nil && !(&bus.ChatRequest{Messages: call.Messages}).HasToolBlocks() {
		return nil, nil
	}
	out := &types.ToolConfiguration{}
	for i, t := range tc.Tools {
		spec := t.ToolSpec
		if spec == nil {
			if t.CachePoint != nil {
				out.Tools = append(out.Tools, &types.ToolMemberCachePoint{Value: cachePoint(t.CachePoint)})
			}
			continue
		}
		schema, err := jsonDocument(spec.InputSchema.JSON)
		if err != nil {
			return nil, fmt.Errorf("toolConfig.tools[%d] %q inputSchema: %w", i, spec.Name, err)
		}
		ts := types.ToolSpecification{
			Name:        aws.String(spec.Name),
			InputSchema: &types.ToolInputSchemaMemberJson{Value: schema},
		}
		if spec.Description != "" {
			ts.Description = aws.String(spec.Description)
		}
		out.Tools = append(out.Tools, &types.ToolMemberToolSpec{Value: ts})
	}
	if choice != nil {
		switch {
		case choice.Auto != nil:
			out.ToolChoice = &types.ToolChoiceMemberAuto{}
		case choice.Any != nil:
			out.ToolChoice = &types.ToolChoiceMemberAny{}
		case choice.Tool != nil:
			out.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(choice.Tool.Name)}}
		}
	}
	return out, nil
}

// cachePoint maps a cache point to Bedrock's (chat allows only the type
// "default").
func cachePoint(c *bus.CachePoint) types.CachePointBlock {
	return types.CachePointBlock{Type: types.CachePointType(c.Type), Ttl: types.CacheTTL(c.TTL)}
}

// jsonDocument decodes raw JSON into a Bedrock document. The SDK's
// document encoder would write a json.RawMessage as a base64 string and a
// json.Number as a string, so the JSON is decoded with numbers kept as
// their text and each number handed over as a smithy document.Number,
// which is written back verbatim: large integers and decimals keep their
// exact digits. The encoder refuses an empty object key, and the SDK
// would then send a malformed body, so such JSON fails here.
func jsonDocument(raw json.RawMessage) (brdocument.Interface, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingJSON
	}
	v, err := smithyValue(v)
	if err != nil {
		return nil, err
	}
	return brdocument.NewLazyDocument(v), nil
}

// smithyValue replaces, in place, every json.Number in v (a value decoded
// with UseNumber) with the smithy document.Number of the same text, and
// returns v. It fails on an empty object key.
func smithyValue(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x), nil
	case map[string]any:
		for k, e := range x {
			if k == "" {
				return nil, errEmptyJSONKey
			}
			e, err := smithyValue(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
	case []any:
		for i, e := range x {
			e, err := smithyValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
	}
	return v, nil
}
