// gRPC's own log lines, bounded. gRPC logs every failed TLS handshake on the
// client port at ERROR level, one line per connection, so a flood of bad
// handshakes would be a flood of lines (and a full disk). With this, each
// distinct line (place and text; a handshake's text names its cause, not
// the caller) is written 20 times, then once per 1000 with the count, to
// stderr as before.
//
// Thread-safety: install once, before gRPC starts; the hook itself may be
// called from any thread.
#pragma once

namespace bw::server {

void BoundGrpcLogs();

}  // namespace bw::server
