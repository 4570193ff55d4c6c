// A bidirectional gRPC stream (callback API) that any thread may write to:
// responses queue (bounded) and are written one at a time, as gRPC
// requires. Owned by shared_ptr: it stays valid for the event loop after
// gRPC is done with it (OnDone), and a Send after that is refused.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <mutex>

namespace bw::server {

template <typename Req, typename Resp>
class BidiStream : public grpc::ServerBidiReactor<Req, Resp>,
                   public std::enable_shared_from_this<BidiStream<Req, Resp>> {
 public:
  // `finish_on_half_close`: end the call once the client half-closes and
  // every request is answered (keep-alive); watch streams go on sending.
  BidiStream(size_t max_queued, bool finish_on_half_close)
      : max_queued_(max_queued), finish_on_half_close_(finish_on_half_close) {}
  ~BidiStream() override = default;

  // Starts reading; keeps the stream alive until gRPC calls OnDone.
  void Begin() {
    self_ = this->shared_from_this();
    this->StartRead(&req_);
  }

  // Queues a response; false when the stream is closed or its queue is full
  // (a client that does not read).
  bool Send(Resp r) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (done_ || finishing_) return false;
    if (queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(r));
    if (!writing_) WriteNext();
    return true;
  }
  // A request given to OnRequest has been answered (or needs no answer).
  // When the client has half-closed, the stream ends after the last one.
  void RequestDone() {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (--in_flight_ == 0 && half_closed_ && finish_on_half_close_) Close(grpc::Status::OK);
  }
  // Ends the stream with `status` once what is queued is written.
  void Close(grpc::Status status) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (done_ || finishing_) return;
    finishing_ = true;
    final_ = std::move(status);
    if (!writing_) FinishOnce(final_);
  }

 protected:
  // A request arrived (on a gRPC thread). Call RequestDone once it is
  // answered, from any thread.
  virtual void OnRequest(Req req) = 0;
  // The stream is over: cancelled, or finished (on a gRPC thread).
  virtual void OnClosed() {}

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed (or the call failed): finish once every
      // request it sent is answered and the queue is written.
      std::lock_guard<std::recursive_mutex> lock(mu_);
      half_closed_ = true;
      if (in_flight_ == 0 && finish_on_half_close_) Close(grpc::Status::OK);
      return;
    }
    Req r = std::move(req_);
    req_.Clear();
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      ++in_flight_;
    }
    OnRequest(std::move(r));
    this->StartRead(&req_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    writing_ = false;
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {
      // The call is broken: finish it, whether or not Close came first.
      queue_.clear();
      FinishOnce(finishing_ ? final_ : grpc::Status::CANCELLED);
      finishing_ = true;
      return;
    }
    if (!queue_.empty()) {
      WriteNext();
    } else if (finishing_) {
      FinishOnce(final_);
    }
  }
  void OnCancel() override {
    // The client cancelled or went away, or the server is shutting down:
    // nothing more can be written. Finish, so that gRPC calls OnDone and the
    // stream's watchers and keep-alives are let go (a watch stream never
    // finishes by itself).
    std::lock_guard<std::recursive_mutex> lock(mu_);
    queue_.clear();
    finishing_ = true;
    final_ = grpc::Status::CANCELLED;
    if (!writing_) FinishOnce(final_);
  }
  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      done_ = true;
      queue_.clear();
    }
    OnClosed();
    self_.reset();  // may delete this
  }
  void FinishOnce(const grpc::Status& st) {
    if (finish_called_) return;
    finish_called_ = true;
    this->Finish(st);
  }
  void WriteNext() {
    writing_ = true;
    // More is queued behind this one: let gRPC buffer it and flush the lot
    // with the last (a watch fan-out writes many small messages at once).
    grpc::WriteOptions options;
    if (queue_.size() > 1) options.set_buffer_hint();
    this->StartWrite(&queue_.front(), options);
  }

  const size_t max_queued_;
  const bool finish_on_half_close_;
  bool finish_called_ = false;
  std::shared_ptr<BidiStream> self_;
  Req req_;
  std::recursive_mutex mu_;
  std::deque<Resp> queue_;  // front() is being written while writing_
  bool writing_ = false;
  bool finishing_ = false;
  bool done_ = false;
  bool half_closed_ = false;
  int in_flight_ = 0;
  grpc::Status final_;
};

}  // namespace bw::server
