package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"

	"github.com/gatehouse-ai/gatehouse/pkg/bus"
)

// BedrockType is the provider type of [Bedrock].
const BedrockType = "bedrock"

// Bedrock streams from Amazon Bedrock's ConverseStream API. System prompts,
// inference parameters, images (image blocks with their bytes), tools
// (toolConfig, toolUse and toolResult blocks), prompt cache points (in the
// system blocks, messages and tools) and the call's guardrail are passed
// through; the model's tool calls are streamed as [Delta] tool-use
// starts and input pieces, and its reasoning (reasoningContent text, in a
// block of its own before the answer's) as [Delta] reasoning pieces; usage
// comes from the stream's metadata event. It is safe for concurrent use.
type Bedrock struct {
	// ProviderName is what [Bedrock.Name] returns (the catalog name).
	ProviderName string
	// Client is the Bedrock runtime client. Build it with
	// [NewBedrockClient] or bedrockruntime.NewFromConfig; chat retries by
	// itself, so the client's own retryer should be aws.NopRetryer.
	Client *bedrockruntime.Client
}

var _ Provider = (*Bedrock)(nil)

// NewBedrockClient builds a Bedrock runtime client from an AWS
// configuration (the standard credential chain and region, loaded with
// config.LoadDefaultConfig), with the SDK's retries turned off, up to
// maxConns idle connections kept (the SDK keeps 10 per host), and
// baseEndpoint, when not empty, overriding the endpoint.
func NewBedrockClient(cfg aws.Config, baseEndpoint string, maxConns int) *bedrockruntime.Client {
	return bedrockruntime.NewFromConfig(cfg, func(o *bedrockruntime.Options) {
		o.Retryer = aws.NopRetryer{}
		if maxConns > 0 {
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
				t.MaxIdleConns = max(t.MaxIdleConns, maxConns)
				t.MaxIdleConnsPerHost = maxConns
			})
		}
		if baseEndpoint != "" {
			o.BaseEndpoint = aws.String(baseEndpoint)
		}
		o.HTTPClient = ownBodyClient{next: o.HTTPClient}
	})
}

// ownBodyClient hands the HTTP transport its own copy of each request
// body. The SDK closes the body it built as soon as the response headers
// arrive, and net/http's write loop may not have finished with it yet (its
// last read or its Close): the write then fails ("EOF") and the transport
// closes the connection under the ConverseStream answer being read, which
// ends the stream after its first events ("use of closed network
// connection"; seen against the fake endpoint with pauses between events,
// the class of aws-sdk-go-v2 issues 1825 and 2737). Request bodies here are
// small JSON, so the copy costs little.
type ownBodyClient struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
}

// Do implements the SDK's HTTP client interface.
func (c ownBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return c.next.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	own := req.Clone(req.Context())
	own.Body = io.NopCloser(bytes.NewReader(body))
	own.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	own.ContentLength = int64(len(body))
	return c.next.Do(own)
}

// Name implements [Provider].
func (b *Bedrock) Name() string { return b.ProviderName }

// InputTokens implements [Provider]; the count is an estimate until the
// metadata event reports usage.
func (b *Bedrock) InputTokens(call *Call) (int64, bool) { return EstimateInput(call), false }

// input builds the ConverseStream input of call. It fails with a
// [KindRejected] [*Error] when a tool schema, tool input or JSON tool
// result is not JSON Bedrock's document encoder can write (chat validates
// them first, so this is only defence).
func (b *Bedrock) input(call *Call) (*bedrockruntime.ConverseStreamInput, error) {
	in := &bedrockruntime.ConverseStreamInput{ModelId: aws.String(call.Model)}
	for _, s := range call.System {
		if s.CachePoint != nil {
			in.System = append(in.System, &types.SystemContentBlockMemberCachePoint{Value: cachePoint(s.CachePoint)})
			continue
		}
		in.System = append(in.System, &types.SystemContentBlockMemberText{Value: s.Text})
	}
	for i, m := range call.Messages {
		msg := types.Message{Role: types.ConversationRole(m.Role)}
		for j, c := range m.Content {
			block, err := contentBlock(c)
			if err != nil {
				return nil, b.rejected(fmt.Errorf("messages[%d].content[%d]: %w", i, j, err))
			}
			msg.Content = append(msg.Content, block)
		}
		in.Messages = append(in.Messages, msg)
	}
	tc, err := toolConfig(call)
	if err != nil {
		return nil, b.rejected(err)
	}
	in.ToolConfig = tc
	in.OutputConfig = bedrockOutput(call.Output)
	if e := call.ReasoningEffort; e != "" && !call.ReasoningMapped && e != bus.ReasoningEffortNone {
		return nil, b.rejected(fmt.Errorf("reasoning effort %q: Bedrock has no such parameter, and the model maps it to no request fields", e))
	}
	if len(call.RequestFields) > 0 {
		doc, err := jsonDocument(call.RequestFields)
		if err != nil {
			return nil, b.rejected(fmt.Errorf("request fields: %w", err))
		}
		in.AdditionalModelRequestFields = doc
	}
	ic := &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(min(call.MaxTokens, 1<<30)))}
	if call.Temperature != nil {
		ic.Temperature = aws.Float32(float32(*call.Temperature))
	}
	if call.TopP != nil {
		ic.TopP = aws.Float32(float32(*call.TopP))
	}
	ic.StopSequences = call.StopSequences
	in.InferenceConfig = ic
	if g := call.Guardrail; g != nil {
		in.GuardrailConfig = &types.GuardrailStreamConfiguration{
			GuardrailIdentifier:  aws.String(g.ID),
			GuardrailVersion:     aws.String(g.Version),
			Trace:                types.GuardrailTrace(g.Trace),
			StreamProcessingMode: types.GuardrailStreamProcessingMode(g.StreamProcessingMode),
		}
	}
	return in, nil
}

// rejected wraps err, a request Bedrock would refuse, as a [KindRejected]
// [*Error].
func (b *Bedrock) rejected(err error) *Error {
	return &Error{Provider: b.ProviderName, Kind: KindRejected, Err: err}
}

// Stream implements [Provider].
func (b *Bedrock) Stream(ctx context.Context, call *Call, emit func(Delta) error) (Result, error) {
	res := Result{StopReason: StopEndTurn}
	res.Usage.InputTokens = EstimateInput(call)
	in, err := b.input(call)
	if err != nil {
		return res, err
	}
	out, err := b.Client.ConverseStream(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("%s: %w", b.ProviderName, ctx.Err())
		}
		return res, b.classify(err)
	}
	stream := out.GetStream()
	defer stream.Close()

	// outBytes counts the text, reasoning and tool calls (names and input)
	// streamed, to estimate output tokens when no usage is reported.
	outBytes := 0
	gotUsage := false
	var emitErr error
	for ev := range stream.Events() {
		switch e := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockStart:
			if s, ok := e.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
				start := &bus.ToolUseStart{ToolUseID: aws.ToString(s.Value.ToolUseId), Name: aws.ToString(s.Value.Name)}
				outBytes += len(start.Name)
				emitErr = emit(Delta{Index: int(aws.ToInt32(e.Value.ContentBlockIndex)), ToolUse: start})
			}
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			d := Delta{Index: int(aws.ToInt32(e.Value.ContentBlockIndex))}
			switch v := e.Value.Delta.(type) {
			case *types.ContentBlockDeltaMemberText:
				d.Text = v.Value
			case *types.ContentBlockDeltaMemberToolUse:
				d.ToolInput = aws.ToString(v.Value.Input)
			case *types.ContentBlockDeltaMemberReasoningContent:
				// The signature and redacted content are passed on too: a
				// client sends them back with the reasoning in a later
				// turn, which Claude requires with tool results.
				switch r := v.Value.(type) {
				case *types.ReasoningContentBlockDeltaMemberText:
					d.Reasoning = r.Value
				case *types.ReasoningContentBlockDeltaMemberSignature:
					d.ReasoningSignature = r.Value
				case *types.ReasoningContentBlockDeltaMemberRedactedContent:
					d.ReasoningRedacted = r.Value
				}
			}
			if n := len(d.Text) + len(d.ToolInput) + len(d.Reasoning); n > 0 || d.ReasoningSignature != "" || len(d.ReasoningRedacted) > 0 {
				outBytes += n
				emitErr = emit(d)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			res.StopReason = string(e.Value.StopReason)
		case *types.ConverseStreamOutputMemberMetadata:
			if u := e.Value.Usage; u != nil {
				gotUsage = true
				res.Usage.InputTokens = int64(aws.ToInt32(u.InputTokens))
				res.Usage.OutputTokens = int64(aws.ToInt32(u.OutputTokens))
				// Bedrock counts cache reads and writes apart from
				// inputTokens; both are input the model read.
				res.CachedInputTokens = int64(aws.ToInt32(u.CacheReadInputTokens))
				res.CacheWriteInputTokens = int64(aws.ToInt32(u.CacheWriteInputTokens))
				for _, d := range u.CacheDetails {
					if d.Ttl == types.CacheTTLOneHour {
						res.CacheWrite1hInputTokens += int64(aws.ToInt32(d.InputTokens))
					}
				}
				res.Usage.InputTokens += res.CachedInputTokens + res.CacheWriteInputTokens
			}
		}
		if emitErr != nil {
			break
		}
	}
	if !gotUsage {
		res.Usage.OutputTokens = int64((outBytes + bytesPerToken - 1) / bytesPerToken)
		res.Usage.Estimated = true
	}
	res.Usage.TotalTokens = res.Usage.InputTokens + res.Usage.OutputTokens
	if emitErr != nil {
		return res, fmt.Errorf("%s: emit: %w", b.ProviderName, emitErr)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: %w", b.ProviderName, ctx.Err())
	}
	if err := stream.Err(); err != nil {
		return res, b.classify(err)
	}
	return res, nil
}

// classify maps an SDK error to an [*Error].
func (b *Bedrock) classify(err error) *Error {
	e := &Error{Provider: b.ProviderName, Kind: KindUpstream, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		e.Status = re.HTTPStatusCode()
		e.Kind = statusKind(e.Status)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Message = api.ErrorCode() + ": " + api.ErrorMessage()
		switch api.(type) {
		case *types.ThrottlingException, *types.ServiceQuotaExceededException:
			e.Kind = KindThrottled
		case *types.ServiceUnavailableException, *types.InternalServerException,
			*types.ModelNotReadyException, *types.ModelTimeoutException, *types.ModelStreamErrorException:
			e.Kind = KindUnavailable
		case *types.ValidationException, *types.AccessDeniedException, *types.ResourceNotFoundException:
			e.Kind = KindRejected
		}
	} else if e.Status == 0 {
		// A transport failure: the connection broke or never opened.
		e.Kind = KindUnavailable
	}
	return e
}
