// A small HTTP/1.1 server on a member's event loop, for /metrics, /health
// and /readyz: GET requests only, one request per connection, bounded
// request size and connection count, a deadline per connection. Handlers
// run on the loop thread and answer through a callback (they may wait for
// the node, e.g. a linearizable health read).
#pragma once

#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "env/real/event_loop.h"

namespace bw::transport {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpReply = std::function<void(HttpResponse)>;
// (method, path without the query) -> answer through `reply`, exactly once.
using HttpHandler =
    std::function<void(const std::string& method, const std::string& path, HttpReply reply)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port (see port())
  size_t max_request_bytes = 8192;
  size_t max_connections = 64;
  int64_t timeout_us = 10'000'000;
};

class HttpServer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Listen(env::EventLoop& loop,
                                                                          HttpServerOptions o,
                                                                          HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  uint16_t port() const { return port_; }

 private:
  struct Conn;
  HttpServer(env::EventLoop& loop, HttpServerOptions o, HttpHandler handler);
  void Accept();
  void Read(const std::shared_ptr<Conn>& c);
  void Respond(const std::shared_ptr<Conn>& c, HttpResponse r);
  void Close(const std::shared_ptr<Conn>& c);

  env::EventLoop& loop_;
  const HttpServerOptions options_;
  HttpHandler handler_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  size_t open_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bw::transport
