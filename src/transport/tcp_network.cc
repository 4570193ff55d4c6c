#include "transport/tcp_network.h"

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "transport/frame.h"

namespace bw::transport {

using asio::ip::tcp;

struct TcpNetwork::Peer {
  NodeId id;
  tcp::endpoint endpoint;
  bool has_endpoint = false;
  std::shared_ptr<tcp::socket> socket;
  bool connecting = false;
  bool writing = false;
  bool redial_scheduled = false;
  std::deque<std::string> queue;  // framed messages not yet written
  size_t queued_bytes = 0;
  std::string batch;  // being written
  size_t batch_frames = 0;
  int64_t backoff_us = 0;
};

struct TcpNetwork::Inbound {
  explicit Inbound(asio::io_context& io, size_t max) : socket(io), reader(max) {}
  tcp::socket socket;
  FrameReader reader;
  bool greeted = false;
  NodeId from;
  std::vector<char> buf = std::vector<char>(64 << 10);
};

absl::StatusOr<std::unique_ptr<TcpNetwork>> TcpNetwork::Listen(env::EventLoop& loop,
                                                               TcpNetworkOptions o) {
  std::unique_ptr<TcpNetwork> net(new TcpNetwork(loop, std::move(o)));
  std::error_code ec;
  asio::ip::address addr = asio::ip::make_address(net->options_.listen_host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen ", net->options_.listen_host, ": not an IP address"));
  }
  tcp::endpoint ep(addr, net->options_.listen_port);
  const std::string where = absl::StrCat(net->options_.listen_host, ":", net->options_.listen_port);
  net->acceptor_.open(ep.protocol(), ec);
  if (!ec) net->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) net->acceptor_.bind(ep, ec);
  if (!ec) net->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("listen ", where, ": ", ec.message()));
  net->port_ = net->acceptor_.local_endpoint().port();
  net->Accept();
  return net;
}

TcpNetwork::TcpNetwork(env::EventLoop& loop, TcpNetworkOptions o)
    : loop_(loop),
      options_(std::move(o)),
      acceptor_(loop.context()),
      cluster_id_(options_.cluster_id) {}

bool TcpNetwork::AcceptCluster(uint64_t cluster_id, NodeId from, NodeId to) {
  if (cluster_id_ == 0) {
    // A joining member learns its cluster, and its own id, from the first
    // peer that calls (the leader, once the member was added): a call to
    // one of the ids its peer URLs can have. The caller may be a member
    // added after this one's --initial-cluster was written, so it need not
    // be a peer this member was told about.
    const std::vector<NodeId>& ids = options_.joining_ids;
    if (cluster_id == 0 ||
        (to != options_.self && std::find(ids.begin(), ids.end(), to) == ids.end())) {
      return false;
    }
    cluster_id_ = cluster_id;
    options_.self = to;
    if (on_cluster_learned_) on_cluster_learned_(cluster_id, to);
    return true;
  }
  if (to != options_.self) return false;
  if (cluster_id == cluster_id_) return true;
  // A joining member that does not know the cluster yet: only one this
  // member was told about (added to the cluster, so it has its address).
  return cluster_id == 0 && peers_.count(from) > 0;
}

TcpNetwork::~TcpNetwork() {
  *alive_ = false;
  std::error_code ec;
  acceptor_.close(ec);
  for (auto& [id, peer] : peers_) {
    if (peer->socket) peer->socket->close(ec);
  }
}

void TcpNetwork::SetPeer(NodeId id, std::string host, uint16_t port) {
  std::shared_ptr<Peer>& peer = peers_[id];
  if (!peer) {
    peer = std::make_shared<Peer>();
    peer->id = id;
  }
  std::error_code ec;
  asio::ip::address addr = asio::ip::make_address(host, ec);
  peer->has_endpoint = !ec;
  if (!ec) peer->endpoint = tcp::endpoint(addr, port);
}

void TcpNetwork::Send(NodeId to, std::string bytes) {
  auto it = peers_.find(to);
  if (it == peers_.end() || !it->second->has_endpoint) {
    ++stats_.dropped_no_address;
    return;
  }
  const std::shared_ptr<Peer>& peer = it->second;
  if (bytes.size() > options_.max_message_bytes) {
    ++stats_.dropped_oversize;
    return;
  }
  std::string frame;
  AppendFrame(&frame, bytes);
  if (peer->queued_bytes + frame.size() > options_.max_queue_bytes) {
    ++stats_.dropped_queue_full;
    return;
  }
  peer->queued_bytes += frame.size();
  peer->queue.push_back(std::move(frame));
  if (!peer->socket) {
    if (!peer->connecting && !peer->redial_scheduled) Dial(peer);
  } else {
    Flush(peer);
  }
}

void TcpNetwork::Dial(const std::shared_ptr<Peer>& peer) {
  peer->connecting = true;
  auto socket = std::make_shared<tcp::socket>(loop_.context());
  socket->async_connect(peer->endpoint,
                        [this, alive = alive_, peer, socket](const std::error_code& ec) {
                          if (!*alive) return;
                          peer->connecting = false;
                          if (ec) {
                            Fail(peer);
                            return;
                          }
                          std::error_code ignored;
                          socket->set_option(tcp::no_delay(true), ignored);
                          ++stats_.connects;
                          peer->socket = socket;
                          peer->backoff_us = 0;
                          Handshake h;
                          h.cluster_id = cluster_id_;
                          h.from = options_.self;
                          h.to = peer->id;
                          std::string hello;
                          AppendFrame(&hello, EncodeHandshake(h));
                          peer->queued_bytes += hello.size();
                          peer->queue.push_front(std::move(hello));
                          Flush(peer);
                        });
}

void TcpNetwork::Flush(const std::shared_ptr<Peer>& peer) {
  if (peer->writing || !peer->socket || peer->queue.empty()) return;
  // Everything queued, in one write (up to 1 MiB or one frame).
  peer->batch.clear();
  peer->batch_frames = 0;
  while (!peer->queue.empty() &&
         (peer->batch.empty() || peer->batch.size() + peer->queue.front().size() <= (1 << 20))) {
    peer->queued_bytes -= peer->queue.front().size();
    peer->batch += peer->queue.front();
    peer->queue.pop_front();
    ++peer->batch_frames;
  }
  peer->writing = true;
  std::shared_ptr<tcp::socket> socket = peer->socket;
  asio::async_write(*socket, asio::buffer(peer->batch),
                    [this, alive = alive_, peer, socket](const std::error_code& ec, size_t) {
                      if (!*alive) return;
                      peer->writing = false;
                      if (ec || peer->socket != socket) {
                        stats_.dropped_in_flight += peer->batch_frames;
                        if (peer->socket == socket) Fail(peer);
                        return;
                      }
                      stats_.sent += peer->batch_frames;
                      Flush(peer);
                    });
}

void TcpNetwork::Fail(const std::shared_ptr<Peer>& peer) {
  if (peer->socket) {
    std::error_code ignored;
    peer->socket->close(ignored);
    peer->socket.reset();
  }
  // What waited is dropped (delivery is not guaranteed; Raft resends).
  stats_.dropped_in_flight += peer->queue.size();
  peer->queue.clear();
  peer->queued_bytes = 0;
  peer->backoff_us = peer->backoff_us == 0
                         ? options_.backoff_min_us
                         : std::min(options_.backoff_max_us, peer->backoff_us * 2);
  peer->redial_scheduled = true;
  loop_.Schedule(peer->backoff_us, [this, alive = alive_, peer] {
    if (!*alive) return;
    peer->redial_scheduled = false;
    // Dial again only when there is something to say.
    if (!peer->queue.empty() && !peer->socket && !peer->connecting) Dial(peer);
  });
}

void TcpNetwork::Accept() {
  auto in = std::make_shared<Inbound>(loop_.context(), options_.max_message_bytes);
  acceptor_.async_accept(in->socket, [this, alive = alive_, in](const std::error_code& ec) {
    if (!*alive) return;
    if (!ec) ReadFrom(in);
    if (acceptor_.is_open()) Accept();
  });
}

void TcpNetwork::ReadFrom(const std::shared_ptr<Inbound>& in) {
  in->socket.async_read_some(
      asio::buffer(in->buf), [this, alive = alive_, in](const std::error_code& ec, size_t n) {
        if (!*alive || ec) return;  // the peer went away; it will dial again
        std::vector<std::string> frames;
        absl::Status s = in->reader.Feed(std::string_view(in->buf.data(), n), &frames);
        for (std::string& f : frames) {
          if (!in->greeted) {
            absl::StatusOr<Handshake> h = DecodeHandshake(f);
            if (!h.ok() || !AcceptCluster(h->cluster_id, h->from, h->to)) {
              ++stats_.rejected_handshakes;
              std::error_code ignored;
              in->socket.close(ignored);
              return;
            }
            in->greeted = true;
            in->from = h->from;
            continue;
          }
          ++stats_.received;
          if (receiver_) receiver_(in->from, f);
          if (!*alive) return;  // the receiver destroyed the network
        }
        if (!s.ok()) {
          // The stream lost its framing: nothing after this can be trusted.
          std::error_code ignored;
          in->socket.close(ignored);
          return;
        }
        ReadFrom(in);
      });
}

}  // namespace bw::transport
