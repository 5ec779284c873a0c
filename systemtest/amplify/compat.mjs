// compat.mjs drives the real aws-amplify v6 Events client against a
// Gatehouse edge and prints what happened as JSON lines on stdout. It is run
// by systemtest/amplify_test.go, which asserts on that output.
//
// Environment:
//   GH_URL        edge base URL, e.g. https://localhost:8443 (TLS: trust the
//                 dev CA with NODE_EXTRA_CA_CERTS)
//   GH_TOKEN      a valid token for GH_SUB
//   GH_SUB        the caller's channel id (its own Inbound/Outbound channels)
//   GH_OTHER_SUB  someone else's channel id (subscribing there must fail)
//   GH_TIMEOUT_MS overall deadline (default 90000)
//
// Output lines: {"step": "...", ...} progress records; one {"step":
// "await-drop"} when the script wants the server to drop its socket; and
// finally {"result": {...}} (exit 0) or {"fatal": "..."} (exit 1).

import WebSocketImpl from 'ws';
import { Amplify } from 'aws-amplify';
import { events } from 'aws-amplify/data';

const { GH_URL, GH_TOKEN, GH_SUB, GH_OTHER_SUB } = process.env;
const TIMEOUT_MS = Number(process.env.GH_TIMEOUT_MS || 90000);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fatal(msg) {
  emit({ fatal: String(msg) });
  process.exit(1);
}

if (!GH_URL || !GH_TOKEN || !GH_SUB || !GH_OTHER_SUB) {
  fatal('GH_URL, GH_TOKEN, GH_SUB and GH_OTHER_SUB are required');
}
setTimeout(() => fatal(`deadline of ${TIMEOUT_MS} ms passed`), TIMEOUT_MS).unref();

// Node 20 has no global WebSocket: Amplify uses whatever globalThis.WebSocket
// is. This subclass of ws records every socket's frames so the script can
// see the resubscription after a reconnect.
const sockets = [];
class TracingWebSocket extends WebSocketImpl {
  constructor(url, protocols) {
    super(url, protocols);
    const rec = { url: String(url), protocol: '', sent: [], received: [], closed: null };
    sockets.push(rec);
    this._rec = rec;
    this.addEventListener('open', () => { rec.protocol = this.protocol; });
    this.addEventListener('message', (m) => {
      try { rec.received.push(JSON.parse(String(m.data))); } catch { rec.received.push({ unparsable: String(m.data) }); }
    });
    this.addEventListener('close', (e) => { rec.closed = { code: e.code, reason: String(e.reason || '') }; });
  }
  send(data, ...rest) {
    try { this._rec.sent.push(JSON.parse(String(data))); } catch { /* not JSON */ }
    return super.send(data, ...rest);
  }
}
globalThis.WebSocket = TracingWebSocket;

async function until(what, cond, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function chatRequest(text, conversationId) {
  return {
    messages: [{ role: 'user', content: [{ text }] }],
    modelId: 'echo',
    conversationId,
  };
}

// answers collects the streamed chat events per requestId.
const answers = new Map();
const subscriptionErrors = [];
function onEvent(msg) {
  const ev = msg.event;
  if (!ev || typeof ev !== 'object' || !ev.requestId) return;
  let a = answers.get(ev.requestId);
  if (!a) {
    a = { requestId: ev.requestId, conversationId: ev.conversationId, text: '', events: 0, seqs: [], done: false, error: null, subscription: msg.id };
    answers.set(ev.requestId, a);
  }
  a.events++;
  a.seqs.push(ev.seq);
  if (ev.contentBlockDelta?.delta?.text) a.text += ev.contentBlockDelta.delta.text;
  if (ev.error) { a.error = ev.error; a.done = true; }
  if (ev.metadata) { a.done = true; a.usage = ev.metadata.usage; }
}

async function answerFor(conversationId) {
  return until(`the answer to ${conversationId}`, () => {
    for (const a of answers.values()) if (a.conversationId === conversationId && a.done) return a;
    return null;
  });
}

function errText(err) {
  if (!err) return '';
  if (err.errors) return JSON.stringify(err.errors);
  return `${err.name || 'Error'}: ${err.message || String(err)}`;
}

async function main() {
  Amplify.configure({
    API: {
      Events: {
        endpoint: `${GH_URL}/event`,
        region: 'us-east-1',
        defaultAuthMode: 'lambda',
      },
    },
  });
  const result = {};

  // 1. Auth failure: a bad token must be refused (connection_error with
  // UnauthorizedException, which Amplify does not retry), over WebSocket
  // and over HTTP.
  try {
    await events.connect(`/Outbound-Messages/${GH_SUB}`, { authToken: 'not-a-valid-token' });
    result.authFailure = { rejected: false };
  } catch (err) {
    const first = sockets[0];
    result.authFailure = {
      rejected: true,
      error: errText(err),
      serverFrames: first ? first.received.map((f) => f.type) : [],
      serverErrors: first ? first.received.filter((f) => f.errors).flatMap((f) => f.errors) : [],
    };
  }
  try {
    await events.post(`/Inbound-Messages/${GH_SUB}`, chatRequest('nope', 'c-denied'), { authToken: 'not-a-valid-token' });
    result.postAuthFailure = { rejected: false };
  } catch (err) {
    result.postAuthFailure = { rejected: true, error: errText(err) };
  }
  emit({ step: 'auth-failure', authFailure: result.authFailure, postAuthFailure: result.postAuthFailure });

  // 2. events.connect + channel.subscribe on the caller's outbound channel.
  const socketsBefore = sockets.length;
  const out = await events.connect(`/Outbound-Messages/${GH_SUB}`, { authToken: GH_TOKEN });
  const sub = out.subscribe({
    next: onEvent,
    error: (err) => subscriptionErrors.push(errText(err)),
  });
  const { subscriptionId } = await sub.ready;
  const ws1 = sockets[sockets.length - 1];
  result.connect = {
    socketsOpened: sockets.length - socketsBefore,
    protocol: ws1.protocol,
    url: ws1.url,
    subscriptionId,
    headerSubprotocol: true,
  };
  emit({ step: 'subscribed', subscriptionId });

  // 3. channel.publish on the inbound channel: the chat request is answered
  // on the outbound subscription.
  const inbound = await events.connect(`/Inbound-Messages/${GH_SUB}`, { authToken: GH_TOKEN });
  const publishResult = await inbound.publish(chatRequest('hello from amplify', 'c-publish'));
  const publishAck = ws1.received.find((f) => f.type === 'publish_success');
  const a1 = await answerFor('c-publish');
  result.publish = { resolved: publishResult ?? null, ack: publishAck ?? null, answer: a1 };
  emit({ step: 'published', answer: a1 });

  // 4. events.post over HTTP, with the event already a JSON string as the
  // reference browser client sends it.
  const postResult = await events.post(`/Inbound-Messages/${GH_SUB}`, JSON.stringify(chatRequest('posted over http', 'c-post')), { authToken: GH_TOKEN });
  const a2 = await answerFor('c-post');
  result.post = { failed: postResult ?? null, answer: a2 };
  emit({ step: 'posted', answer: a2 });

  // 5. Subscribing to someone else's channel fails with a subscribe_error,
  // and the shared socket survives it.
  const other = await events.connect(`/Outbound-Messages/${GH_OTHER_SUB}`, { authToken: GH_TOKEN });
  const denied = other.subscribe({ next: () => {}, error: () => {} });
  try {
    await denied.ready;
    result.forbidden = { rejected: false };
  } catch (err) {
    const f = ws1.received.find((x) => x.type === 'subscribe_error');
    result.forbidden = { rejected: true, error: errText(err), frame: f ?? null, socketOpen: ws1.closed === null };
  }
  emit({ step: 'forbidden', forbidden: result.forbidden });

  // 6. Reconnect: the test drops the socket from the server side; Amplify
  // reconnects and resubscribes with the same subscription id, and the
  // subscription keeps delivering.
  const openBefore = sockets.length;
  emit({ step: 'await-drop', subscriptionId });
  await until('the server to close the socket', () => ws1.closed, 30000);
  emit({ step: 'dropped', close: ws1.closed });
  const ws2 = await until('a new socket', () => (sockets.length > openBefore ? sockets[sockets.length - 1] : null), 30000);
  await until('the resubscription to succeed', () =>
    ws2.received.some((f) => f.type === 'subscribe_success' && f.id === subscriptionId), 30000);
  const resubscribed = ws2.sent.filter((f) => f.type === 'subscribe').map((f) => ({ id: f.id, channel: f.channel }));
  await inbound.publish(chatRequest('after the reconnect', 'c-reconnect'));
  const a3 = await answerFor('c-reconnect');
  result.reconnect = {
    close: ws1.closed,
    newSocketInit: ws2.sent.some((f) => f.type === 'connection_init'),
    newSocketAck: ws2.received.some((f) => f.type === 'connection_ack'),
    resubscribed,
    answer: a3,
  };
  emit({ step: 'reconnected', reconnect: result.reconnect });

  result.subscriptionErrors = subscriptionErrors;
  result.sockets = sockets.map((s) => ({ sent: s.sent.map((f) => f.type), received: [...new Set(s.received.map((f) => f.type))], closed: s.closed }));
  emit({ result });
  process.exit(0);
}

main().catch((err) => fatal(err && err.stack ? err.stack : errText(err)));
