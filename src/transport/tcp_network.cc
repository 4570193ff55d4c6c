#include "transport/tcp_network.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/read.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "transport/frame.h"

namespace bw::transport {

using asio::ip::tcp;

namespace {

// Why OpenSSL refused a certificate in the chain being verified.
std::string VerifyError(asio::ssl::verify_context& ctx) {
  X509_STORE_CTX* x = ctx.native_handle();
  return absl::StrCat("certificate verify failed: ",
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
}

}  // namespace

// One connection's byte stream: TCP, or TLS over TCP. The context is held
// for the stream's life (a reload builds a new one for later connections).
class TcpNetwork::Stream {
 public:
  Stream(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls) : ctx_(std::move(tls)) {
    if (ctx_) {
      ssl_.emplace(std::move(socket), *ctx_);
    } else {
      plain_.emplace(std::move(socket));
    }
  }
  tcp::socket& socket() { return ssl_ ? ssl_->next_layer() : *plain_; }
  bool tls() const { return ssl_.has_value(); }
  asio::ssl::stream<tcp::socket>& ssl() { return *ssl_; }
  template <class Buffers, class Handler>
  void ReadSome(const Buffers& b, Handler&& h) {
    if (ssl_) {
      ssl_->async_read_some(b, std::forward<Handler>(h));
    } else {
      plain_->async_read_some(b, std::forward<Handler>(h));
    }
  }
  template <class Buffers, class Handler>
  void Write(const Buffers& b, Handler&& h) {
    if (ssl_) {
      asio::async_write(*ssl_, b, std::forward<Handler>(h));
    } else {
      asio::async_write(*plain_, b, std::forward<Handler>(h));
    }
  }
  void Close() {
    std::error_code ignored;
    socket().close(ignored);
  }

 private:
  std::shared_ptr<asio::ssl::context> ctx_;
  std::optional<asio::ssl::stream<tcp::socket>> ssl_;
  std::optional<tcp::socket> plain_;
};

struct TcpNetwork::Peer {
  NodeId id;
  tcp::endpoint endpoint;
  bool has_endpoint = false;
  std::string server_name;  // what its certificate must name
  std::shared_ptr<Stream> socket;
  bool connecting = false;
  bool writing = false;
  bool redial_scheduled = false;
  std::deque<std::string> queue;  // framed messages not yet written
  size_t queued_bytes = 0;
  std::string batch;  // being written
  size_t batch_frames = 0;
  int64_t backoff_us = 0;
};

// Accepted connections open, and those not greeted yet by source address.
// Shared with the connections, which may outlive the network.
struct TcpNetwork::InboundCounts {
  size_t open = 0;
  std::map<asio::ip::address, size_t> ungreeted;
};

struct TcpNetwork::Inbound {
  Inbound(tcp::socket socket, size_t max, std::shared_ptr<asio::ssl::context> tls,
          std::shared_ptr<InboundCounts> counts, asio::ip::address source)
      : stream(std::move(socket), std::move(tls)),
        reader(max),
        counts(std::move(counts)),
        source(source) {
    ++this->counts->open;
    ++this->counts->ungreeted[source];
  }
  ~Inbound() {
    --counts->open;
    Greeted();
  }
  // No longer counted against its source's connections waiting to greet.
  void Greeted() {
    if (greeted) return;
    greeted = true;
    auto it = counts->ungreeted.find(source);
    if (--it->second == 0) counts->ungreeted.erase(it);
  }
  Stream stream;
  FrameReader reader;
  bool greeted = false;
  NodeId from;
  std::vector<char> buf = std::vector<char>(64 << 10);
  std::shared_ptr<InboundCounts> counts;
  asio::ip::address source;
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
  if (net->options_.tls) {
    absl::StatusOr<std::unique_ptr<PeerTls>> tls = PeerTls::Load(*net->options_.tls);
    if (!tls.ok()) return tls.status();
    net->tls_ = std::move(*tls);
  }
  net->Accept();
  return net;
}

TcpNetwork::TcpNetwork(env::EventLoop& loop, TcpNetworkOptions o)
    : loop_(loop),
      options_(std::move(o)),
      acceptor_(loop.context()),
      cluster_id_(options_.cluster_id),
      inbound_counts_(std::make_shared<InboundCounts>()) {}

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
    if (peer->socket) peer->socket->Close();
  }
}

void TcpNetwork::SetPeer(NodeId id, std::string host, uint16_t port, std::string server_name) {
  std::shared_ptr<Peer>& peer = peers_[id];
  if (!peer) {
    peer = std::make_shared<Peer>();
    peer->id = id;
  }
  std::error_code ec;
  asio::ip::address addr = asio::ip::make_address(host, ec);
  peer->has_endpoint = !ec;
  if (!ec) peer->endpoint = tcp::endpoint(addr, port);
  peer->server_name = server_name.empty() ? host : std::move(server_name);
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
  auto stream =
      std::make_shared<Stream>(tcp::socket(loop_.context()), tls_ ? tls_->Current() : nullptr);
  stream->socket().async_connect(
      peer->endpoint, [this, alive = alive_, peer, stream](const std::error_code& ec) {
        if (!*alive) return;
        if (ec) {
          peer->connecting = false;
          Fail(peer);
          return;
        }
        std::error_code ignored;
        stream->socket().set_option(tcp::no_delay(true), ignored);
        if (!stream->tls()) {
          Connected(peer, stream);
          return;
        }
        // The certificate must chain to the CA and name the host dialled.
        asio::ssl::stream<tcp::socket>& ssl = stream->ssl();
        std::error_code not_ip;
        asio::ip::make_address(peer->server_name, not_ip);
        if (not_ip) SSL_set_tlsext_host_name(ssl.native_handle(), peer->server_name.c_str());
        ssl.set_verify_mode(asio::ssl::verify_peer);
        auto why = std::make_shared<std::string>();
        ssl.set_verify_callback(
            [name = peer->server_name, why](bool preverified, asio::ssl::verify_context& ctx) {
              if (!preverified) {
                *why = VerifyError(ctx);
                return false;
              }
              if (asio::ssl::host_name_verification(name)(preverified, ctx)) return true;
              *why = absl::StrCat("its certificate does not name ", name);
              return false;
            });
        ssl.async_handshake(asio::ssl::stream_base::client, [this, alive, peer, stream,
                                                             why](const std::error_code& ec) {
          if (!*alive) return;
          if (ec) {
            TlsFailed(absl::StrCat("to ", peer->server_name, ":", peer->endpoint.port(), ": ",
                                   why->empty() ? ec.message() : *why));
            peer->connecting = false;
            stream->Close();
            Fail(peer);
            return;
          }
          Connected(peer, stream);
        });
      });
}

void TcpNetwork::Connected(const std::shared_ptr<Peer>& peer,
                           const std::shared_ptr<Stream>& stream) {
  peer->connecting = false;
  ++stats_.connects;
  peer->socket = stream;
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
}

void TcpNetwork::TlsFailed(const std::string& why) {
  ++stats_.tls_failures;
  stats_.last_tls_error = why;
  if (!options_.on_tls_error) return;
  // Each distinct message is told the first time and every 100th after;
  // the map is bounded (forgotten when full), as everything fed by
  // strangers must be.
  if (tls_error_counts_.size() >= 64 && !tls_error_counts_.count(why)) tls_error_counts_.clear();
  uint64_t n = ++tls_error_counts_[why];
  if (n == 1) {
    options_.on_tls_error(why);
  } else if (n % 100 == 0) {
    options_.on_tls_error(absl::StrCat(why, " (", n, " times)"));
  }
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
  std::shared_ptr<Stream> socket = peer->socket;
  socket->Write(asio::buffer(peer->batch),
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
    peer->socket->Close();
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
  acceptor_.async_accept([this, alive = alive_](const std::error_code& ec, tcp::socket socket) {
    if (!*alive) return;
    if (!ec) StartInbound(std::move(socket));
    if (acceptor_.is_open()) Accept();
  });
}

void TcpNetwork::StartInbound(tcp::socket socket) {
  std::error_code ec;
  asio::ip::address source = socket.remote_endpoint(ec).address();
  auto waiting = inbound_counts_->ungreeted.find(source);
  const bool source_busy = waiting != inbound_counts_->ungreeted.end() &&
                           waiting->second >= options_.max_ungreeted_per_source;
  if (ec || source_busy || inbound_counts_->open >= options_.max_inbound_connections) {
    ++(source_busy ? stats_.rejected_source_busy : stats_.rejected_inbound_full);
    socket.close(ec);
    return;
  }
  // The context current now, so a reloaded certificate serves this caller.
  auto in = std::make_shared<Inbound>(std::move(socket), options_.max_message_bytes,
                                      tls_ ? tls_->Current() : nullptr, inbound_counts_, source);
  // A caller that does not greet in time is closed: idle or half-open
  // connections cannot hold the slots.
  std::weak_ptr<Inbound> weak = in;
  loop_.Schedule(options_.greeting_timeout_us, [this, alive = alive_, weak] {
    if (!*alive) return;
    std::shared_ptr<Inbound> p = weak.lock();
    if (p == nullptr || p->greeted) return;
    ++stats_.greeting_timeouts;
    p->stream.Close();
  });
  if (!in->stream.tls()) {
    ReadFrom(in);
    return;
  }
  asio::ssl::stream<tcp::socket>& ssl = in->stream.ssl();
  ssl.set_verify_mode(tls_->options().client_cert_auth
                          ? asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert
                          : asio::ssl::verify_none);
  auto why = std::make_shared<std::string>();
  ssl.set_verify_callback([why](bool preverified, asio::ssl::verify_context& ctx) {
    if (!preverified) *why = VerifyError(ctx);
    return preverified;
  });
  ssl.async_handshake(
      asio::ssl::stream_base::server, [this, alive = alive_, in, why](const std::error_code& ec) {
        if (!*alive) return;
        absl::Status caller = ec ? absl::UnauthenticatedError(why->empty() ? ec.message() : *why)
                                 : tls_->CheckCaller(in->stream.ssl().native_handle());
        if (!caller.ok()) {
          std::error_code ignored;
          tcp::endpoint from = in->stream.socket().remote_endpoint(ignored);
          // By address only: a caller's ports change with every try.
          TlsFailed(absl::StrCat("from ", from.address().to_string(), ": ", caller.message()));
          in->stream.Close();
          return;
        }
        ReadFrom(in);
      });
}

// With client certificates checked, a caller's certificate must name the
// host this member knows the claimed member at (as the dialling side
// checks), so one member's certificate cannot speak for another.
bool TcpNetwork::CallerNamed(const std::shared_ptr<Inbound>& in, NodeId from) {
  if (!in->stream.tls() || !tls_->options().client_cert_auth) return true;
  auto it = peers_.find(from);
  if (it == peers_.end() || it->second->server_name.empty()) return true;
  const std::string& name = it->second->server_name;
  X509* cert = SSL_get1_peer_certificate(in->stream.ssl().native_handle());
  if (cert == nullptr) return false;
  std::error_code not_ip;
  asio::ip::make_address(name, not_ip);
  bool ok = not_ip ? X509_check_host(cert, name.c_str(), name.size(), 0, nullptr) == 1
                   : X509_check_ip_asc(cert, name.c_str(), 0) == 1;
  X509_free(cert);
  if (!ok) {
    TlsFailed(absl::StrCat("from member ", from.value(), ": its certificate does not name ", name));
  }
  return ok;
}

void TcpNetwork::ReadFrom(const std::shared_ptr<Inbound>& in) {
  in->stream.ReadSome(asio::buffer(in->buf), [this, alive = alive_, in](const std::error_code& ec,
                                                                        size_t n) {
    if (!*alive || ec) return;  // the peer went away; it will dial again
    std::vector<std::string> frames;
    absl::Status s = in->reader.Feed(std::string_view(in->buf.data(), n), &frames);
    for (std::string& f : frames) {
      if (!in->greeted) {
        absl::StatusOr<Handshake> h = DecodeHandshake(f);
        if (!h.ok() || !CallerNamed(in, h->from) || !AcceptCluster(h->cluster_id, h->from, h->to)) {
          ++stats_.rejected_handshakes;
          in->stream.Close();
          return;
        }
        in->Greeted();
        in->from = h->from;
        continue;
      }
      ++stats_.received;
      if (receiver_) receiver_(in->from, f);
      if (!*alive) return;  // the receiver destroyed the network
    }
    if (!s.ok()) {
      // The stream lost its framing: nothing after this can be trusted.
      in->stream.Close();
      return;
    }
    ReadFrom(in);
  });
}

}  // namespace bw::transport
