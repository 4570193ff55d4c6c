#include "transport/http_server.h"

#include <asio/read_until.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <utility>

#include "absl/strings/str_cat.h"

namespace bw::transport {

using asio::ip::tcp;

struct HttpServer::Conn {
  Conn(asio::io_context& io, size_t max_bytes) : socket(io), timer(io), buf(max_bytes) {}
  tcp::socket socket;
  asio::steady_timer timer;
  asio::streambuf buf;
  std::string out;
  bool closed = false;
};

namespace {

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Listen(env::EventLoop& loop,
                                                               HttpServerOptions o,
                                                               HttpHandler handler) {
  std::unique_ptr<HttpServer> s(new HttpServer(loop, std::move(o), std::move(handler)));
  std::error_code ec;
  asio::ip::address addr = asio::ip::make_address(s->options_.host, ec);
  const std::string where = absl::StrCat(s->options_.host, ":", s->options_.port);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("listen ", where, ": not an IP address"));
  tcp::endpoint ep(addr, s->options_.port);
  s->acceptor_.open(ep.protocol(), ec);
  if (!ec) s->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s->acceptor_.bind(ep, ec);
  if (!ec) s->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("listen ", where, ": ", ec.message()));
  s->port_ = s->acceptor_.local_endpoint().port();
  s->Accept();
  return s;
}

HttpServer::HttpServer(env::EventLoop& loop, HttpServerOptions o, HttpHandler handler)
    : loop_(loop),
      options_(std::move(o)),
      handler_(std::move(handler)),
      acceptor_(loop.context()) {}

HttpServer::~HttpServer() {
  *alive_ = false;
  std::error_code ec;
  acceptor_.close(ec);
}

void HttpServer::Accept() {
  auto c = std::make_shared<Conn>(loop_.context(), options_.max_request_bytes);
  acceptor_.async_accept(c->socket, [this, alive = alive_, c](std::error_code ec) {
    if (!*alive) return;
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (open_ >= options_.max_connections) {
        std::error_code ignored;
        c->socket.close(ignored);  // over the limit: refuse at once
      } else {
        ++open_;
        c->timer.expires_after(std::chrono::microseconds(options_.timeout_us));
        c->timer.async_wait([this, alive, c](std::error_code e) {
          if (*alive && !e) Close(c);
        });
        Read(c);
      }
    }
    Accept();
  });
}

void HttpServer::Read(const std::shared_ptr<Conn>& c) {
  asio::async_read_until(
      c->socket, c->buf, "\r\n\r\n", [this, alive = alive_, c](std::error_code ec, size_t) {
        if (!*alive || c->closed) return;
        if (ec == asio::error::not_found) {
          Respond(c, HttpResponse{413, "text/plain; charset=utf-8", "request too large\n"});
          return;
        }
        if (ec) {
          Close(c);
          return;
        }
        std::string head(asio::buffers_begin(c->buf.data()), asio::buffers_end(c->buf.data()));
        size_t eol = head.find("\r\n");
        std::string line = head.substr(0, eol);
        size_t sp1 = line.find(' ');
        size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
          Respond(c, HttpResponse{400, "text/plain; charset=utf-8", "bad request line\n"});
          return;
        }
        std::string method = line.substr(0, sp1);
        std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
        if (size_t q = path.find('?'); q != std::string::npos) path.resize(q);
        if (method != "GET" && method != "HEAD") {
          Respond(c, HttpResponse{405, "text/plain; charset=utf-8", "only GET\n"});
          return;
        }
        handler_(method, path, [this, alive, c](HttpResponse r) {
          if (*alive) Respond(c, std::move(r));
        });
      });
}

void HttpServer::Respond(const std::shared_ptr<Conn>& c, HttpResponse r) {
  if (c->closed) return;
  c->out = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status),
                        "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
                        "\r\nConnection: close\r\n\r\n", r.body);
  asio::async_write(c->socket, asio::buffer(c->out),
                    [this, alive = alive_, c](std::error_code, size_t) {
                      if (*alive) Close(c);
                    });
}

void HttpServer::Close(const std::shared_ptr<Conn>& c) {
  if (c->closed) return;
  c->closed = true;
  --open_;
  std::error_code ec;
  c->timer.cancel();
  c->socket.shutdown(tcp::socket::shutdown_both, ec);
  c->socket.close(ec);
}

}  // namespace bw::transport
