// The client port's limits against abuse that gRPC enforces for us, from
// the flags (docs/security.md): calls in flight per connection, keepalive
// enforcement (a client pinging too often is sent GOAWAY), the server's own
// keepalive pings (a dead peer's connection is closed), and idle
// connections closed. Request size (--max-request-bytes) is set beside the
// services, whose errors it shapes; watchers per stream by the watch hub.
//
// Not here, because gRPC 1.51 cannot: a cap on simultaneous connections
// (its GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS came later). Bound them
// outside the process (a firewall's connlimit, the file-descriptor limit).
#pragma once

#include "server/config.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace bw::server {

void ApplyClientLimits(const ServerConfig& c, grpc::ServerBuilder* b);

}  // namespace bw::server
