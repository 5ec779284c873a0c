// Package wsframe reads and writes RFC 6455 WebSocket frames on the server
// side of a connection, without a goroutine or a read buffer per idle socket.
//
// [Reader] parses client-to-server frames. It is resumable: its source may
// return an error (typically a "would block" [net.Error] from a non-blocking
// socket) after any byte, and a later [Reader.Next] continues exactly where
// the previous one stopped. Between frames a Reader holds no byte buffer;
// read buffers come from a shared pool and go back as soon as they hold no
// unread bytes, and large payloads are read straight into the message slice.
//
// [AppendFrame] and [AppendClose] encode server-to-client frames (final,
// unmasked); [ParseClose] decodes the payload of a client's close frame.
//
// No extension is negotiated: RSV1-3 must be zero and there is no
// permessage-deflate.
package wsframe
