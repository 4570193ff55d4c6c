// The network of a real member: peer messages over TCP (Asio), as the
// env::Network the node sends through. Framing and the handshake are
// transport/frame.h.
//
// Per peer there is one outgoing connection, dialled on first use. Send
// frames the message into that peer's bounded queue; queued frames go out
// together in one write (batching). A connection that fails is dropped with
// whatever was in flight (the Network contract: delivery is not
// guaranteed) and dialled again after a backoff that doubles up to a bound.
// Incoming connections must open with a handshake naming this cluster and
// this node; any other is closed before a message is delivered. Frames past
// the size limit and messages that would overfill a queue are dropped and
// counted.
//
// With TLS (options.tls), every connection is TLS 1.2+ (transport/peer_tls.h):
// the dialling side checks the certificate against the CA and the host it
// dialled (SAN DNS name or IP); the accepting side, with client_cert_auth,
// requires a certificate of that CA, and one naming the host of the member
// the caller's handshake claims to be, when it knows that member. Accepted
// connections are bounded in number (in all, and per source address until
// they greet) and must greet (TLS handshake and handshake frame) within a
// time limit, so a flood of idle or garbage connections cannot pile up.
//
// Thread-safety: everything runs on the EventLoop's thread, which must
// outlive the network; destroy the network on that thread or after the loop
// has stopped.
#pragma once

#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "env/env.h"
#include "env/real/event_loop.h"
#include "transport/peer_tls.h"

namespace bw::transport {

struct TcpNetworkOptions {
  NodeId self;
  uint64_t cluster_id = 0;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: any free port (see port())
  size_t max_message_bytes = 16 << 20;
  size_t max_queue_bytes = 64 << 20;  // per peer
  int64_t backoff_min_us = 10'000;
  int64_t backoff_max_us = 1'000'000;
  // A member joining a cluster (cluster_id 0) may have been given any of
  // these ids by the member that added it (see server::MemberIdFor); the
  // first peer that calls it by one of them names its id.
  std::vector<NodeId> joining_ids;
  // Set: every connection is TLS with these.
  std::optional<PeerTlsOptions> tls;
  // An accepted connection that has not finished its TLS handshake and
  // sent its handshake frame within this time is closed.
  int64_t greeting_timeout_us = 10'000'000;
  // Accepted connections open at once; past it new ones are closed.
  size_t max_inbound_connections = 256;
  // Accepted connections from one address that have not greeted yet; past
  // it that address's new ones are closed, so one source cannot hold the
  // slots above (members greet at once; the limit spares them).
  size_t max_ungreeted_per_source = 16;
  // Told why a TLS handshake or certificate check failed, either side (for
  // the operator's log). A message told before is told again only every
  // 100th time, so a peer retrying every backoff (or a flood) does not fill
  // the log.
  std::function<void(const std::string&)> on_tls_error;
};

struct TcpNetworkStats {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_oversize = 0;
  uint64_t dropped_in_flight = 0;   // queued or written when a connection failed
  uint64_t dropped_no_address = 0;  // to a node with no known address
  uint64_t rejected_handshakes = 0;
  uint64_t connects = 0;
  uint64_t tls_failures = 0;           // TLS handshakes failed, either side
  uint64_t rejected_inbound_full = 0;  // accepted past max_inbound_connections
  uint64_t rejected_source_busy = 0;   // past max_ungreeted_per_source
  uint64_t greeting_timeouts = 0;
  std::string last_tls_error;
};

class TcpNetwork final : public env::Network {
 public:
  // Binds and listens; INVALID_ARGUMENT / UNAVAILABLE naming the address.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TcpNetwork>> Listen(env::EventLoop& loop,
                                                                          TcpNetworkOptions o);
  ~TcpNetwork() override;
  TcpNetwork(const TcpNetwork&) = delete;
  TcpNetwork& operator=(const TcpNetwork&) = delete;

  uint16_t port() const { return port_; }
  // Where peer `id` listens. A changed address takes effect at the next dial.
  // With TLS, its certificate must name `server_name` (default: `host`).
  void SetPeer(NodeId id, std::string host, uint16_t port, std::string server_name = "");

  // The cluster this network belongs to. A network made with cluster id 0
  // (a member joining a cluster whose id it does not know) accepts the first
  // peer's cluster and its own id (one of joining_ids), calls `fn` with
  // both and keeps them from then on; members accept a caller with cluster
  // id 0 only if they know its address.
  uint64_t cluster_id() const { return cluster_id_; }
  NodeId self() const { return options_.self; }
  void SetOnClusterLearned(std::function<void(uint64_t cluster, NodeId self)> fn) {
    on_cluster_learned_ = std::move(fn);
  }

  void Send(NodeId to, std::string bytes) override;
  void SetReceiver(Receiver receiver) override { receiver_ = std::move(receiver); }
  const TcpNetworkStats& stats() const { return stats_; }

 private:
  class Stream;
  struct Peer;
  struct Inbound;
  TcpNetwork(env::EventLoop& loop, TcpNetworkOptions o);
  void Dial(const std::shared_ptr<Peer>& peer);
  void Connected(const std::shared_ptr<Peer>& peer, const std::shared_ptr<Stream>& stream);
  void StartInbound(asio::ip::tcp::socket socket);
  void TlsFailed(const std::string& why);
  bool CallerNamed(const std::shared_ptr<Inbound>& in, NodeId from);
  void Flush(const std::shared_ptr<Peer>& peer);
  void Fail(const std::shared_ptr<Peer>& peer);
  void Accept();
  void ReadFrom(const std::shared_ptr<Inbound>& in);
  bool AcceptCluster(uint64_t cluster_id, NodeId from, NodeId to);

  env::EventLoop& loop_;
  TcpNetworkOptions options_;  // self changes once, when a joining member learns its id
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::map<NodeId, std::shared_ptr<Peer>> peers_;
  Receiver receiver_;
  TcpNetworkStats stats_;
  uint64_t cluster_id_ = 0;
  std::function<void(uint64_t, NodeId)> on_cluster_learned_;
  std::unique_ptr<PeerTls> tls_;  // null: plaintext
  std::map<std::string, uint64_t> tls_error_counts_;
  struct InboundCounts;
  std::shared_ptr<InboundCounts> inbound_counts_;
  // Handlers still queued when the network goes check this first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bw::transport
