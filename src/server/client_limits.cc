#include "server/client_limits.h"

#include <grpcpp/server_builder.h>

#include <algorithm>
#include <climits>

namespace bw::server {

namespace {

int ClampInt(int64_t v) {
  return static_cast<int>(std::clamp<int64_t>(v, 0, INT_MAX));
}

}  // namespace

void ApplyClientLimits(const ServerConfig& c, grpc::ServerBuilder* b) {
  b->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, ClampInt(c.max_concurrent_streams));
  // etcd's keepalive enforcement policy: pings closer together than the
  // minimum, or with no call open, count as strikes; past the strikes the
  // connection is sent GOAWAY (too_many_pings).
  b->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                        ClampInt(c.grpc_keepalive_min_time_ms));
  b->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  b->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  // The server's own pings find connections whose client is gone.
  b->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ClampInt(c.grpc_keepalive_interval_ms));
  b->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ClampInt(c.grpc_keepalive_timeout_ms));
  if (c.max_connection_idle_ms > 0) {
    b->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, ClampInt(c.max_connection_idle_ms));
  }
}

}  // namespace bw::server
