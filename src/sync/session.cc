#include "sync/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "proto/batch.h"
#include "proto/convert.h"

namespace entrysync {
namespace {

// What a frame waiting for the loop costs besides its payload (the Frame,
// the posted handler): a flood of tiny frames is counted for what it holds.
constexpr size_t kQueuedFrameCost = 256;
// A Pong frame: length, type, a fixed64 nonce field, CRC.
constexpr size_t kPongFrameBytes = kFrameOverhead + 9;
// Pings left unanswered while the stream was full before the peer is cut
// off: a peer that reads pings once per keepalive (5 s), so 64 KiB of them
// (~3,600) would be hours of keepalives; a flood gets there at once.
constexpr size_t kMaxUnansweredPingBytes = 64 << 10;

Clock::time_point At(double seconds) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
}

}  // namespace

const char* SessionStateName(SessionState s) {
  switch (s) {
    case SessionState::kHandshake:
      return "handshake";
    case SessionState::kSyncing:
      return "syncing";
    case SessionState::kCurrent:
      return "current";
    case SessionState::kClosed:
      return "closed";
  }
  return "?";
}

Session::Session(SessionHost& host, std::unique_ptr<ByteStream> stream, SyncExecutor exec, bool outbound)
    : config_(host.config()),
      exec_(std::move(exec)),
      outbound_(outbound),
      stream_(std::move(stream)),
      shared_(host, config_, *this),
      uploads_(shared_),
      sender_(shared_, uploads_),
      tick_(exec_) {
  snapshot_.address = stream_->Describe();
  shared_.send = [this](std::string frame) { Send(std::move(frame)); };
  shared_.pending_write_bytes = [this] { return stream_->PendingWriteBytes(); };
  shared_.publish = [this] { Publish(); };
  shared_.wake = [this] { SchedulePump(); };
  shared_.end = [this](Status why) { End(std::move(why)); };
}

// The stream is destroyed with the session; it runs none of our handlers
// afterwards (ByteStream contract).
Session::~Session() = default;

void Session::Start() {
  // The stream starts on the loop, after Hello: no frame can be handled
  // before Begin (posts from different threads are not ordered).
  Post([](Session& me) {
    ES_RETURN_IF_ERROR(me.Begin());
    me.StartStream();
    return Status::Ok();
  });
}

void Session::StartStream() {
  last_receive_ = Clock::Seconds();
  std::weak_ptr<Session> weak = weak_from_this();
  stream_->Start(
      [weak](std::string_view d) {
        if (auto self = weak.lock()) self->OnData(d);
      },
      [weak](const Status& s) {
        // Frames received before the close were posted first.
        Status why = s.ok() ? Aborted("peer closed the connection") : s;
        if (auto self = weak.lock()) self->Post([why](Session&) { return why; });
      },
      [weak] {
        auto self = weak.lock();
        if (self && self->wants_writable_.exchange(false))
          self->Post([](Session& me) {
            me.SchedulePump();
            return Status::Ok();
          });
      });
}

void Session::Post(std::function<Status(Session&)> fn) {
  if (ended_.load()) return;
  asio::post(exec_, [weak = weak_from_this(), fn = std::move(fn)] {
    auto self = weak.lock();
    if (!self || self->ended_.load()) return;
    Status s = fn(*self);
    if (!s.ok()) self->End(std::move(s));
  });
}

void Session::End(Status why) {
  if (ended_.load()) return;
  if (why.code() != Code::kAborted || close_status().ok())
    spdlog::warn("session with {}: {}", shared_.peer_name.empty() ? stream_->Describe() : shared_.peer_name,
                 why.message());
  Teardown(std::move(why));
}

void Session::Close(Status why) {
  asio::post(exec_, [weak = weak_from_this(), why = std::move(why)] {
    auto self = weak.lock();
    if (!self || self->ended_.load()) return;
    if (!why.ok()) self->stream_->Write(EncodeFrame(ErrorToWire(why)));
    self->Teardown(why.ok() ? Aborted("closed") : why);
  });
}

// Loop: the session is over. Pull callers hear why, the pulls it claimed
// are released, files close, the stream closes; the host reaps it.
void Session::Teardown(Status why) {
  if (ended_.exchange(true)) return;
  {
    MutexLock lock(mu_);
    if (close_status_.ok()) close_status_ = why.ok() ? Aborted("closed") : why;
    why = close_status_;
  }
  stream_->Close();
  tick_.cancel();
  if (flow_) flow_->Stop();
  for (auto& pr : deferred_paths_) pr.done(why);
  deferred_paths_.clear();
  if (puller_) puller_->Abort(why);
  uploads_.Abort();
  sender_.Abort();
  {
    MutexLock lock(mu_);
    snapshot_.state = SessionState::kClosed;
    snapshot_.close_reason = close_status_.message();
    snapshot_.transfers = shared_.transfers.List();
    snapshot_.counters = shared_.counters;
    snapshot_.trust_error = shared_.trust_error;
  }
  closed_ = true;
  shared_.host.OnSessionChanged(this);
}

Status Session::close_status() const {
  MutexLock lock(mu_);
  return close_status_;
}

std::string Session::peer_name() const {
  MutexLock lock(mu_);
  return snapshot_.peer_name;
}

bool Session::BothCurrent() const {
  MutexLock lock(mu_);
  return snapshot_.state == SessionState::kCurrent;
}

bool Session::ready() const {
  MutexLock lock(mu_);
  return snapshot_.state == SessionState::kSyncing || snapshot_.state == SessionState::kCurrent;
}

SessionSnapshot Session::Snapshot() const {
  MutexLock lock(mu_);
  SessionSnapshot s = snapshot_;
  s.wire_sent = stream_->BytesSent();
  s.wire_received = stream_->BytesReceived();
  return s;
}

void Session::Publish() {
  {
    MutexLock lock(mu_);
    snapshot_.transfers = shared_.transfers.List();
    snapshot_.counters = shared_.counters;
    snapshot_.trust_error = shared_.trust_error;
    if (hello_received_ && snapshot_.state != SessionState::kClosed) {
      bool current = shared_.sent_done && shared_.peer_done && puller_->idle();
      snapshot_.state = current ? SessionState::kCurrent : SessionState::kSyncing;
    }
  }
  shared_.host.OnSessionUpdated(this);
}

void Session::NotifyAdvance(const Uuid& owner, Epoch epoch, Seq max_seq, std::optional<Uuid> location) {
  Post([a = Advance{owner, epoch, max_seq, location}](Session& me) {
    if (!me.hello_received_) {
      me.early_advances_[a.owner] = a;  // after our Hello: told once the peer's arrived
      return Status::Ok();
    }
    ES_RETURN_IF_ERROR(me.sender_.OnAdvance(a));
    me.SchedulePump();
    return Status::Ok();
  });
}

void Session::Poke() {
  Post([](Session& me) { return me.hello_received_ ? me.puller_->Evaluate() : Status::Ok(); });
}

void Session::RequestPath(const Uuid& owner, const std::string& path, std::function<void(Status)> done) {
  if (ended_.load()) {
    Status why = close_status();
    done(why.ok() ? Aborted("session closed") : why);
    return;
  }
  auto req = std::make_shared<PathRequest>(PathRequest{owner, path, std::move(done)});
  Post([req](Session& me) {
    if (me.hello_received_) return me.puller_->LoadPath(req->owner, req->path, std::move(req->done));
    me.deferred_paths_.push_back(std::move(*req));  // sent once the peer said hello
    return Status::Ok();
  });
}

void Session::Send(std::string frame) {
  stream_->Write(std::move(frame));
  last_send_ = Clock::Seconds();
  const size_t unread = stream_->PendingWriteBytes();
  if (unread > config_.max_unread_bytes)
    Overrun(
        Aborted("not reading what it is sent, " + std::to_string(unread) + " bytes queued; disconnected"));
}

void Session::Overrun(const Status& why) {
  if (overrun_.exchange(true)) return;
  Post([why](Session&) { return why; });  // before the stream's close handler: this reason is logged
  stream_->Abort(why);
}

bool Session::AnswerPing(const Frame& f) {
  const size_t pending = stream_->PendingWriteBytes();
  if (pending + kPongFrameBytes > config_.max_pending_write_bytes) {
    // The bytes already queued will tell the peer we are alive, once it
    // reads. A peer that keeps pinging meanwhile is not reading.
    unanswered_ping_bytes_ += kPongFrameBytes;
    if (unanswered_ping_bytes_ <= kMaxUnansweredPingBytes) return true;
    Overrun(Aborted("not reading its replies, " + std::to_string(pending) + " bytes queued; disconnected"));
    return false;
  }
  unanswered_ping_bytes_ = 0;
  auto ping = ParseMessage<wire::Ping>(f);
  if (!ping.ok()) return true;
  wire::Pong pong;
  pong.set_nonce(ping->nonce());
  stream_->Write(EncodeFrame(pong));
  return true;
}

// Stream's executor: decode frames; answer pings at once so a loop busy
// applying a batch never lets the peer time out.
void Session::OnData(std::string_view data) {
  if (overrun_.load()) return;
  last_receive_ = Clock::Seconds();
  decoder_.Feed(data);
  for (;;) {
    auto next = decoder_.Next();
    if (!next.ok()) {
      const Status& why = next.status();
      Post([why](Session&) { return why; });
      return;
    }
    if (!next->has_value()) return;
    Frame& f = **next;
    if (f.type == MessageType::kPing) {
      if (!AnswerPing(f)) return;
      continue;
    }
    if (f.type == MessageType::kPong) continue;
    const size_t cost = f.payload.size() + kQueuedFrameCost;
    const size_t waiting = inbox_bytes_.fetch_add(cost) + cost;
    if (waiting > config_.max_inbox_bytes) {
      Overrun(Aborted("sends faster than it is handled, " + std::to_string(waiting) +
                      " bytes of frames waiting; disconnected"));
      return;
    }
    Post([f = std::move(f), cost](Session& me) {
      me.inbox_bytes_.fetch_sub(cost);
      ES_RETURN_IF_ERROR(me.HandleFrame(f));
      me.SchedulePump();
      return Status::Ok();
    });
  }
}
void Session::ArmTick() {
  double keepalive = config_.keepalive.count() / 1000.0;
  double idle = config_.idle_timeout.count() / 1000.0;
  double due = std::min(last_send_ + keepalive, last_receive_.load() + idle);
  if (!hello_received_) due = std::min(due, begun_ + config_.hello_timeout.count() / 1000.0);
  tick_.expires_at(At(due));
  tick_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->ended_.load()) self->OnTick();
  });
}

void Session::OnTick() {
  double now = Clock::Seconds();
  if (!hello_received_ && now - begun_ >= config_.hello_timeout.count() / 1000.0) {
    const auto ms = config_.hello_timeout.count();
    Status why = Aborted("peer sent no Hello within " +
                         (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms"));
    spdlog::warn("session with {}: {}", stream_->Describe(), why.message());
    Teardown(why);
    return;
  }
  if (now - last_receive_.load() >= config_.idle_timeout.count() / 1000.0) {
    Status why =
        Aborted("peer sent nothing for " + std::to_string(config_.idle_timeout.count() / 1000) + "s");
    spdlog::warn("session with {}: {}", shared_.peer_name.empty() ? stream_->Describe() : shared_.peer_name,
                 why.message());
    Teardown(why);
    return;
  }
  if (now - last_send_ >= config_.keepalive.count() / 1000.0) {
    wire::Ping p;
    p.set_nonce(RandomU64());
    Send(EncodeFrame(p));
  }
  ArmTick();
}

void Session::SchedulePump() {
  if (pump_scheduled_ || ended_.load()) return;
  if (!sender_.busy() && !uploads_.busy()) return;
  pump_scheduled_ = true;
  Post([](Session& me) {
    me.pump_scheduled_ = false;
    return me.Pump();
  });
}

// One batch (or a few chunks) per transfer per call, so that frames and
// other sessions interleave with a long transfer; posted again while there
// is more to send and credit for it. At the high-water mark it waits for
// the stream's writable callback instead.
Status Session::Pump() {
  if (shared_.WriteBlocked()) {
    wants_writable_ = true;
    // The stream may have drained between the check and the flag.
    if (!shared_.WriteBlocked() && wants_writable_.exchange(false)) SchedulePump();
    return Status::Ok();
  }
  bool did_work = false;
  ES_RETURN_IF_ERROR(sender_.Pump(&did_work));
  ES_RETURN_IF_ERROR(uploads_.Pump(&did_work));
  if (did_work) SchedulePump();
  return Status::Ok();
}

Status Session::HandleFrame(const Frame& f) {
  if (!hello_received_ && f.type != MessageType::kHello && f.type != MessageType::kError)
    return ProtocolError("expected Hello first, got " + MessageTypeName(f.type));
  switch (f.type) {
    case MessageType::kHello:
      return OnHello(f);
    case MessageType::kStateRequest:
      return sender_.OnStateRequest(f);
    case MessageType::kStateBatch:
      return puller_->OnStateBatch(f);
    case MessageType::kStateChange:
      return puller_->OnStateChange(f);
    case MessageType::kCredit:
      return OnCredit(f);
    case MessageType::kCurrent:
      return OnCurrent(f);
    case MessageType::kBulkIndexComplete:
      return puller_->OnBulkNotice(f);
    case MessageType::kSnapshotOffer:
      return puller_->OnSnapshotOffer(f);
    case MessageType::kSnapshotRequest:
      return uploads_.OnSnapshotRequest(f);
    case MessageType::kSnapshotChunk:
      return puller_->OnSnapshotChunk(f);
    case MessageType::kError:
      return OnError(f);
    default:
      return ProtocolError(MessageTypeName(f.type) + " is not supported by this version");
  }
}

Status Session::OnCredit(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::Credit>(f));
  uploads_.OnCredit(c.transfer_id(), c.batches());
  return sender_.OnCredit(c);
}

Status Session::OnCurrent(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto c, ParseMessage<wire::Current>(f));
  if (!c.owner().empty()) return puller_->OnCurrent(c);
  shared_.peer_done = true;  // no owner: the peer pulled everything it wanted
  Publish();
  return Status::Ok();
}

Status Session::OnError(const Frame& f) {
  ES_ASSIGN_OR_RETURN(auto e, ParseMessage<wire::Error>(f));
  ES_ASSIGN_OR_RETURN(bool ours, puller_->OnRequestFailed(e));
  if (!ours) return Aborted("peer reported: " + e.message());
  return Status::Ok();  // one request failed; the connection goes on
}

}  // namespace entrysync
