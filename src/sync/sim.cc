#include "sync/sim.h"

#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

#include "store/export.h"

namespace entrysync::sim {

SyncConfig DefaultConfig() {
  SyncConfig c;
  c.prepare_snapshots = false;
  c.reader_threads = false;
  return c;
}

TestKey MakeTestKey(uint8_t first) {
  // Seeds {first, n, 0, ...} for n = 0, 1, ... until the id's first byte is
  // `first`: about 256 tries, the same key every run.
  for (uint32_t n = 0;; ++n) {
    uint8_t seed[32] = {first, static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8),
                        static_cast<uint8_t>(n >> 16)};
    std::shared_ptr<EVP_PKEY> key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof seed),
                                  EVP_PKEY_free);
    std::array<uint8_t, 32> pub{};
    size_t len = pub.size();
    if (!key || EVP_PKEY_get_raw_public_key(key.get(), pub.data(), &len) != 1)
      throw std::runtime_error("sim: cannot make a test key");
    DeviceId id = DeviceIdOfEd25519(pub);
    if (id.bytes[0] == first) return TestKey{key, id};
  }
}

std::function<Result<Checkpoint>(Epoch, Seq, const LtHash::Checksum&)> TestKey::Signer(
    const Uuid& library) const {
  return [key = key, library](Epoch e, Seq s, const LtHash::Checksum& d) {
    return SignCheckpoint(key.get(), library, e, s, d);
  };
}

// ---- Node ----

Node::Node(const std::string& name, uint8_t index, std::optional<Uuid> library, SyncConfig config,
           asio::any_io_executor exec)
    : name_(name), exec_(std::move(exec)) {
  auto l = Library::Create(dir_.path(), name, library);
  if (!l.ok()) throw std::runtime_error("sim: cannot create a library: " + l.status().message());
  lib_ = std::move(*l);
  key_ = MakeTestKey(index);  // the order of ids is the order of nodes
  id_ = key_.id;
  Status s = lib_->SetLocalDeviceId(id_);
  if (!s.ok()) throw std::runtime_error("sim: " + s.message());
  uuid_ = lib_->LocalDevice()->uuid;
  tm_ = std::make_unique<TransactionManager>(*lib_, bus_);
  // The writer's jobs run on the loop too: one polled thread, deterministic.
  if (!config.sign_checkpoint) config.sign_checkpoint = key_.Signer(lib_->library_id());
  svc_ = std::make_unique<SyncService>(dir_.path(), config, exec_, SyncObserver{}, exec_);
}

Node::~Node() { Stop(); }

void Node::Pair(const Node& other) {
  auto r = lib_->AddPeer(other.name_, other.id_, "");
  if (!r.ok()) throw std::runtime_error("sim: cannot pair: " + r.status().message());
}

Status Node::Start() {
  ES_RETURN_IF_ERROR(svc_->Start());
  svc_->AttachBus(bus_);
  started_ = true;
  return Status::Ok();
}

void Node::Stop() {
  if (started_) svc_->Shutdown();
  started_ = false;
}

std::vector<EntryRecord> Node::Index(int n, const std::string& root) {
  auto loc = tm_->AddLocation(root, "data");
  if (!loc.ok()) throw std::runtime_error("sim: " + loc.status().message());
  location_ = *loc;
  std::vector<EntryRecord> rows(n);
  Uuid root_uuid = NewUuidV7();
  for (int i = 0; i < n; ++i) {
    rows[i].uuid = i == 0 ? root_uuid : NewUuidV7();
    rows[i].parent = i == 0 ? Uuid::Nil() : root_uuid;
    rows[i].name = i == 0 ? "data" : "file-" + std::to_string(i) + ".txt";
    rows[i].extension = i == 0 ? "" : "txt";
    rows[i].kind = i == 0 ? EntryKind::kDir : EntryKind::kFile;
    rows[i].size = static_cast<uint64_t>(i) * 100;
    rows[i].inode = static_cast<uint64_t>(i) + 1000;
    rows[i].modified_ns = 1'700'000'000'000'000'000 + i;
  }
  auto r = tm_->CommitBulkEntries(location_, rows);
  if (!r.ok()) throw std::runtime_error("sim: " + r.status().message());
  return rows;
}

Status Node::Change(std::vector<EntryRecord> rows) { return tm_->CommitChanges(location_, rows).status(); }

std::string Node::DigestOf(const Uuid& owner) {
  auto d = lib_->FindDeviceByUuid(owner);
  if (!d.ok()) return "none";
  auto digest = DigestOwner(*lib_, d->id);
  return digest.ok() ? digest->sha256_hex : "error: " + digest.status().message();
}

uint64_t Node::RowsAppliedTotal() {
  auto n = lib_->RowsAppliedTotal();
  return n.ok() ? *n : 0;
}

// ---- Link ----

// A pipe end that counts the frames its side writes.
class Link::Tap final : public ByteStream {
 public:
  explicit Tap(std::unique_ptr<ByteStream> inner) : inner_(std::move(inner)) {}

  using ByteStream::Start;
  void Start(DataHandler on_data, CloseHandler on_closed, WritableHandler on_writable) override {
    inner_->Start(std::move(on_data), std::move(on_closed), std::move(on_writable));
  }
  void Write(std::string bytes) override {
    Count(bytes);
    inner_->Write(std::move(bytes));
  }
  size_t PendingWriteBytes() const override { return inner_->PendingWriteBytes(); }
  void Close() override { inner_->Close(); }
  DeviceId RemoteId() const override { return inner_->RemoteId(); }
  uint64_t BytesSent() const override { return inner_->BytesSent(); }
  uint64_t BytesReceived() const override { return inner_->BytesReceived(); }
  std::string Describe() const override { return inner_->Describe(); }

  void Cut() { CutPipe(*inner_); }
  const Traffic& traffic() const { return traffic_; }

 private:
  // Frame headers: u32 big-endian length L (bytes after it), u8 type.
  void Count(std::string_view bytes) {
    traffic_.bytes += bytes.size();
    while (!bytes.empty()) {
      if (skip_ > 0) {
        size_t n = std::min<uint64_t>(skip_, bytes.size());
        skip_ -= n;
        bytes.remove_prefix(n);
        continue;
      }
      header_[have_++] = static_cast<uint8_t>(bytes[0]);
      bytes.remove_prefix(1);
      if (have_ < 5) continue;
      uint64_t len = (uint64_t{header_[0]} << 24) | (uint64_t{header_[1]} << 16) |
                     (uint64_t{header_[2]} << 8) | uint64_t{header_[3]};
      size_t type = header_[4] & 15;
      traffic_.frames[type]++;
      traffic_.last_bytes[type] = len + 4;
      skip_ = len > 0 ? len - 1 : 0;  // L >= 5 for any frame this program writes
      have_ = 0;
    }
  }

  std::unique_ptr<ByteStream> inner_;
  Traffic traffic_;
  uint8_t header_[5] = {};
  size_t have_ = 0;
  uint64_t skip_ = 0;
};

const Traffic& Link::sent_by_dialer() const { return dialer_end->traffic(); }
const Traffic& Link::sent_by_listener() const { return listener_end->traffic(); }
void Link::Cut() { dialer_end->Cut(); }

// ---- Simulation ----

Simulation::Simulation() : start_(clock_.now()), work_(io_.get_executor()) {}

// NOLINTNEXTLINE(bugprone-exception-escape): a test harness; a throw here is a bug, and a crash shows it
Simulation::~Simulation() {
  for (auto& n : nodes_) n->Stop();
  Drain(nullptr);
  nodes_.clear();
  Drain(nullptr);
}

Node& Simulation::AddNode(const std::string& name, SyncConfig config) {
  auto index = static_cast<uint8_t>(nodes_.size() + 1);
  nodes_.push_back(std::make_unique<Node>(name, index, library_, std::move(config), io_.get_executor()));
  if (!library_) library_ = nodes_.back()->lib().library_id();
  return *nodes_.back();
}

void Simulation::Pair(Node& a, Node& b) {
  a.Pair(b);
  b.Pair(a);
}

Status Simulation::StartAll() {
  for (auto& n : nodes_)
    if (!n->started()) ES_RETURN_IF_ERROR(n->Start());
  return Status::Ok();
}

Link Simulation::Connect(Node& dialer, Node& listener, PipeOptions options) {
  auto [d, l] = MakePipe(io_.get_executor(), io_.get_executor(), dialer.id(), listener.id(), options);
  auto dt = std::make_unique<Link::Tap>(std::move(d));
  auto lt = std::make_unique<Link::Tap>(std::move(l));
  Link link;
  link.dialer_end = dt.get();
  link.listener_end = lt.get();
  link.dialer = dialer.svc().AddSession(std::move(dt), /*outbound=*/true);
  link.listener = listener.svc().AddSession(std::move(lt), /*outbound=*/false);
  return link;
}

std::pair<std::unique_ptr<ByteStream>, std::shared_ptr<Session>> Simulation::ConnectRaw(
    Node& listener, const DeviceId& raw_id) {
  auto [raw, l] = MakePipe(io_.get_executor(), io_.get_executor(), raw_id, listener.id());
  auto session = listener.svc().AddSession(std::move(l), /*outbound=*/false);
  return {std::move(raw), std::move(session)};
}

// poll_one runs one ready handler; when none is ready it runs the reactor,
// which fires due timers and, with a manual clock, reports the earliest
// pending one (ManualClock::NoteWake). So when it returns 0 nothing is
// ready and next_wake() is current (max() when no timer is pending: the
// wake is forgotten before each poll, and a reactor with no timer reports
// none).
bool Simulation::Drain(const std::function<bool()>& pred) {
  for (;;) {
    clock_.ForgetWake();
    if (io_.poll_one() == 0) return false;
    ++handlers_;
    if (pred && pred()) return true;
  }
}

std::optional<Duration> Simulation::RunUntil(const std::function<bool()>& pred, Duration limit) {
  const Clock::time_point begin = clock_.now();
  const Clock::time_point end = begin + limit;
  if (pred && pred()) return Duration::zero();
  for (;;) {
    if (Drain(pred)) return clock_.now() - begin;
    Clock::time_point now = clock_.now();
    if (now >= end) return std::nullopt;
    // Straight to the next timer; nothing else can happen before it.
    Clock::time_point next = std::min(clock_.next_wake(), end);
    clock_.Advance(next > now ? next - now : Duration(1));
    ++wakeups_;
  }
}

void Simulation::RunFor(Duration d) { RunUntil(nullptr, d); }

void Report(const Simulation& sim, const std::string& name,
            std::chrono::steady_clock::time_point real_start) {
  double real_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - real_start).count();
  std::printf("[sim] %s: %.3f s simulated, %llu handlers, %llu wakeups, %.0f ms real\n", name.c_str(),
              std::chrono::duration<double>(sim.Elapsed()).count(),
              static_cast<unsigned long long>(sim.handlers_run()),
              static_cast<unsigned long long>(sim.wakeups()), real_ms);
}

}  // namespace entrysync::sim
