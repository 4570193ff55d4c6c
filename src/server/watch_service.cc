// etcd's Watch service: one bidirectional stream per client, watches fed by the member's watch hub.
//
// A thin adapter from the wire to the member (EtcdServer): requests are
// checked and turned into proposals or reads on the member's loop; the
// logic lives in the member and the state machine.
#include "server/services.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bulwark/idempotency.grpc.pb.h"
#include "core/splitmix.h"
#include "env/real/deadline.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "kv/etcd_errors.h"
#include "member/etcd_error_map.h"
#include "server/bidi_stream.h"
#include "server/client_limits.h"
#include "server/etcd_server.h"
#include "server/password.h"
#include "server/service_support.h"
#include "server/tls.h"

namespace bw::server {

namespace {

// The watch stream speaks bytes (a raw gRPC method): a response is written
// from its own few bytes and the events it shares with every other watcher
// of them (WatchReply), not serialized whole once per watcher.
class WatchStream final : public BidiStream<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // A client that leaves this many responses unread loses its watchers.
  static constexpr size_t kMaxQueued = 4096;
  WatchStream(EtcdServer& s, std::string token)
      : BidiStream(kMaxQueued, /*finish_on_half_close=*/false), s_(s), token_(std::move(token)) {}

  void Open() {
    std::weak_ptr<WatchStream> weak = std::static_pointer_cast<WatchStream>(shared_from_this());
    s_.loop().Post([this, weak] {
      sid_ = s_.member().watch_hub().AddStream([weak](member::WatchReply r) {
        std::shared_ptr<WatchStream> p = weak.lock();
        if (p == nullptr) return false;
        if (p->Send(p->s_.EncodeWatchReply(r))) return true;
        // A client that leaves this many responses unread: its watchers
        // are dropped and the stream ends, so it watches again from the
        // last revision it saw (as etcd's clients do on a stream error).
        p->Close(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "bulwark: watch stream too far behind; watch again"));
        return false;
      });
    });
  }

 private:
  void OnRequest(grpc::ByteBuffer bytes) override {
    auto self = std::static_pointer_cast<WatchStream>(shared_from_this());
    etcdserverpb::WatchRequest req;
    grpc::ProtoBufferReader reader(&bytes);
    if (!req.ParseFromZeroCopyStream(&reader)) {
      // What gRPC answers a request it cannot parse.
      Close(grpc::Status(grpc::StatusCode::INTERNAL, "bulwark: malformed WatchRequest"));
      RequestDone();
      return;
    }
    s_.loop().Post([self, req = std::move(req)] {
      if (req.has_create_request()) {
        // A watcher may only see keys its user may read (checked when it
        // is created, as etcd does).
        bulwark::internal::Request access;
        *access.mutable_watch_create() = req.create_request();
        self->s_.member().ResolveUser(
            self->token_, [self, req, access](absl::StatusOr<std::string> user) {
              if (user.ok()) {
                if (absl::Status st = self->s_.member().mvcc().Authorize(*user, access); !st.ok())
                  user = st;
              }
              self->CreateOrRefuse(req, user.status());
            });
        return;
      }
      self->s_.member().watch_hub().OnRequest(self->sid_, req);
      self->RequestDone();
    });
  }
  // A create request once its user is known: refused (created and canceled,
  // with etcd's reason) or handed to the hub. Loop thread.
  void CreateOrRefuse(const etcdserverpb::WatchRequest& req, const absl::Status& allowed) {
    if (!allowed.ok()) {
      etcdserverpb::WatchResponse refused;
      s_.member().FillHeader(refused.mutable_header(), s_.member().mvcc().revision());
      refused.set_watch_id(req.create_request().watch_id());
      refused.set_created(true);
      refused.set_canceled(true);
      refused.set_cancel_reason(GoStatusText(allowed));
      Send(s_.EncodeWatchReply(member::WatchReply{std::move(refused), nullptr}));
    } else {
      s_.member().watch_hub().OnRequest(sid_, req);
    }
    RequestDone();
  }
  void OnClosed() override {
    auto self = std::static_pointer_cast<WatchStream>(shared_from_this());
    s_.loop().Post([self] { self->s_.member().watch_hub().RemoveStream(self->sid_); });
  }

  EtcdServer& s_;
  const std::string token_;
  uint64_t sid_ = 0;  // on the loop thread
};

class WatchService final
    : public etcdserverpb::Watch::WithRawCallbackMethod_Watch<etcdserverpb::Watch::Service> {
 public:
  explicit WatchService(EtcdServer& s) : s_(s) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* ctx) override {
    auto stream = std::make_shared<WatchStream>(s_, s_.TokenOf(ctx));
    stream->Open();
    stream->Begin();
    return stream.get();
  }

 private:
  EtcdServer& s_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewWatchService(EtcdServer& s) {
  return std::make_unique<WatchService>(s);
}

}  // namespace bw::server
