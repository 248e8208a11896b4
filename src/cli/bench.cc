// entrysync bench: syncs N synthetic entries from a fresh library A to a
// fresh peer B, each a separate entrysync process, over TLS on 127.0.0.1,
// once per forced strategy, and measures wall time, wire bytes, records/s
// and peak RSS of both sides against a bare-SQLite floor. See
// bench/README.md.
//
// Every figure comes from real child processes of this binary:
//   A: `entrysync serve --listen 127.0.0.1:PORT` (the sender)
//   B: `entrysync sync --peer alpha --strategy S --json` (change, batch,
//      snapshot), or `entrysync serve` dialing A before A's bulk commit
//      (bulk: A's daemon notices the commit and announces it; B fetches in
//      the background).
#include "cli/bench.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../../bench/synthetic_tree.h"
#include "base/event_bus.h"
#include "proto/frame.h"
#include "store/library.h"
#include "store/transaction_manager.h"

// Generated from src/store/schema/*.sql (cmake/embed.cmake).
extern const char* const es_schema_names[];
extern const char* const es_schema_texts[];
extern const int es_schema_count;

namespace entrysync::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void Fail(const std::string& why) { throw BenchError(why); }

std::string SelfExe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) Fail("cannot find this executable: " + ec.message());
  return p.string();
}

std::string ReadFile(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n = 2000) { return s.size() > n ? s.substr(s.size() - n) : s; }

// ---- child processes ----

struct Exit {
  int status = 0;
  rusage ru{};
  double wall_s = 0;
};

// Children still running; killed if the bench fails half-way.
std::vector<pid_t>& LiveChildren() {
  static std::vector<pid_t> live;
  return live;
}

pid_t Spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) Fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int n = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || n < 0) _exit(127);
    dup2(n, 0);
    dup2(o, 1);
    dup2(e, 2);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  LiveChildren().push_back(pid);
  return pid;
}

Exit Wait(pid_t pid, Clock::time_point started) {
  Exit x;
  for (;;) {
    pid_t r = wait4(pid, &x.status, 0, &x.ru);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) Fail(std::string("wait4: ") + std::strerror(errno));
  }
  x.wall_s = Since(started);
  auto& live = LiveChildren();
  live.erase(std::remove(live.begin(), live.end(), pid), live.end());
  return x;
}

bool Succeeded(const Exit& x) { return WIFEXITED(x.status) && WEXITSTATUS(x.status) == 0; }

std::string Describe(const Exit& x) {
  if (WIFEXITED(x.status)) return "exit code " + std::to_string(WEXITSTATUS(x.status));
  if (WIFSIGNALED(x.status)) return "signal " + std::to_string(WTERMSIG(x.status));
  return "status " + std::to_string(x.status);
}

// Logs of one run's child processes.
struct RunDir {
  fs::path dir;
  int n = 0;
  std::pair<fs::path, fs::path> Logs(const std::string& label) {
    ++n;
    std::string base = std::to_string(n) + "-" + label;
    return {dir / "logs" / (base + ".out"), dir / "logs" / (base + ".err")};
  }
};

// Runs `entrysync ARGS...` to completion; returns its stdout or fails with
// its stderr.
// $NAME split on spaces ("valgrind --tool=callgrind"): a profiler to run
// one side under (ENTRYSYNC_BENCH_WRAP_RECEIVER, ENTRYSYNC_BENCH_WRAP_SENDER).
std::vector<std::string> Wrapper(const char* name) {
  std::vector<std::string> out;
  const char* v = std::getenv(name);
  if (!v) return out;
  std::stringstream ss(v);
  std::string w;
  while (ss >> w) out.push_back(w);
  return out;
}

std::string RunOk(RunDir& rd, const std::string& label, const std::vector<std::string>& args,
                  Exit* exit = nullptr, std::vector<std::string> full = {}) {
  full.push_back(SelfExe());
  full.insert(full.end(), args.begin(), args.end());
  auto [out, err] = rd.Logs(label);
  auto t0 = Clock::now();
  pid_t pid = Spawn(full, out, err);
  Exit x = Wait(pid, t0);
  if (!Succeeded(x)) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    Fail("'entrysync" + cmd + "' failed (" + Describe(x) + "): " + Tail(ReadFile(err)));
  }
  if (exit) *exit = x;
  return ReadFile(out);
}

// The last line of `out` that is a JSON object (spdlog also writes to stdout).
json LastJson(const std::string& out) {
  std::stringstream ss(out);
  std::string line, last;
  while (std::getline(ss, line))
    if (!line.empty() && line[0] == '{') last = line;
  if (last.empty()) Fail("no JSON in the output: " + Tail(out, 500));
  return json::parse(last);
}

// Peak resident set of a running process (VmHWM), bytes.
uint64_t PeakRss(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// CPU seconds (user + sys) a running process used so far.
double CpuSeconds(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::stringstream ss(stat.substr(close + 2));
  std::vector<std::string> f;
  std::string w;
  while (ss >> w) f.push_back(w);
  // Fields after the command: state is field 3; utime 14, stime 15.
  if (f.size() < 13) return -1;
  return (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double CpuSeconds(const rusage& ru) {
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

// Stops a daemon with SIGTERM (SIGKILL after 30 s); returns its exit.
Exit Stop(pid_t pid) {
  kill(pid, SIGTERM);
  auto t0 = Clock::now();
  for (;;) {
    int status = 0;
    rusage ru{};
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) {
      auto& live = LiveChildren();
      live.erase(std::remove(live.begin(), live.end(), pid), live.end());
      return Exit{status, ru, Since(t0)};
    }
    if (Since(t0) > 30) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct KillLeftovers {
  ~KillLeftovers() {
    for (pid_t p : LiveChildren()) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
    LiveChildren().clear();
  }
};

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    Fail("cannot find a free port");
  close(fd);
  return ntohs(a.sin_port);
}

bool PortOpen(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

void WaitFor(const std::string& what, double timeout_s, const std::function<bool()>& ready,
             pid_t must_live = 0) {
  auto t0 = Clock::now();
  while (!ready()) {
    if (must_live > 0) {
      int st = 0;
      if (waitpid(must_live, &st, WNOHANG) == must_live) {
        auto& live = LiveChildren();
        live.erase(std::remove(live.begin(), live.end(), must_live), live.end());
        Fail("a daemon exited while waiting for " + what);
      }
    }
    if (Since(t0) > timeout_s) Fail("timed out waiting for " + what);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---- libraries ----

struct Device {
  fs::path dir;
  std::string device_id, library_id, uuid;
};

Device Identify(RunDir& rd, const fs::path& dir) {
  json id = LastJson(RunOk(rd, "id", {"--library", dir.string(), "id", "--json"}));
  return Device{dir, id["device_id"], id["library_id"], id["device_uuid"]};
}

std::string DigestOf(RunDir& rd, const fs::path& dir, const std::string& device) {
  std::vector<std::string> args{"--library", dir.string(), "digest"};
  if (!device.empty()) {
    args.push_back("--device");
    args.push_back(device);
  }
  std::string out = RunOk(rd, "digest", args);
  return out.substr(0, out.find_first_of(" \n"));
}

// The seq B's watermark holds of owner `uuid`, read from B's library file
// while B's daemon runs (WAL: readers never block the writer).
class WatermarkProbe {
 public:
  WatermarkProbe(const fs::path& lib_dir, const std::string& owner_uuid) {
    auto uuid = Uuid::Parse(owner_uuid);
    if (!uuid) Fail("bad uuid " + owner_uuid);
    owner_ = *uuid;
    std::string path = (lib_dir / Library::kDbFile).string();
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) Fail("open " + path);
    sqlite3_busy_timeout(db_, 1000);
    if (sqlite3_prepare_v2(db_,
                           "SELECT w.seq FROM watermark w JOIN device d ON d.id = w.owner WHERE d.uuid = ?",
                           -1, &st_, nullptr) != SQLITE_OK)
      Fail(std::string("prepare: ") + sqlite3_errmsg(db_));
  }
  ~WatermarkProbe() {
    sqlite3_finalize(st_);
    sqlite3_close(db_);
  }
  int64_t Seq() {
    sqlite3_bind_blob(st_, 1, owner_.bytes.data(), 16, SQLITE_STATIC);
    int64_t seq = -1;
    if (sqlite3_step(st_) == SQLITE_ROW) seq = sqlite3_column_int64(st_, 0);
    sqlite3_reset(st_);
    return seq;
  }

 private:
  Uuid owner_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
};

json ReadStatus(const fs::path& lib_dir) {
  try {
    std::string s = ReadFile(lib_dir / "status.json");
    if (s.empty()) return nullptr;
    return json::parse(s);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// ---- the floor: bare SQLite, same schema, batches of 1000 ----

const char* InitSchema() {
  for (int i = 0; i < es_schema_count; ++i)
    if (std::strstr(es_schema_names[i], "001_init") != nullptr) return es_schema_texts[i];
  Fail("001_init.sql is not embedded");
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "?";
    sqlite3_free(err);
    Fail("sqlite '" + sql.substr(0, 60) + "': " + why);
  }
}

// The same rows into an empty `entry` table of the library's schema, with
// the library's durability (WAL, synchronous=NORMAL, 64 MB cache), one
// prepared single-row INSERT, 1000 rows per transaction. Seconds, including
// the checkpoint that the last commit triggers.
double FloorSeconds(const fs::path& file, const std::vector<EntryRecord>& rows) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix, ec);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    Fail("open " + file.string());
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(db, sqlite3_close);
  Exec(db,
       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;"
       " PRAGMA temp_store=MEMORY;");
  Exec(db, InitSchema());
  Exec(db,
       "INSERT INTO device(id, uuid, name, is_local, trusted) VALUES(1, zeroblob(16), 'bench', 1, 1);"
       "INSERT INTO location(id, uuid, owner, root_path, name, seq) VALUES(1, randomblob(16), 1, '/x', 'x', "
       "1);");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO entry(uuid, owner, location, parent, name, extension, kind, size, inode,"
          " created_ns, modified_ns, accessed_ns, content_hash, seq, deleted)"
          " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
          -1, &st, nullptr) != SQLITE_OK)
    Fail(std::string("prepare: ") + sqlite3_errmsg(db));
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> st_guard(st, sqlite3_finalize);
  sync();
  auto t0 = Clock::now();
  int64_t seq = 1;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i % 1000 == 0) Exec(db, "BEGIN");
    const EntryRecord& r = rows[i];
    sqlite3_bind_blob(st, 1, r.uuid.bytes.data(), 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, 1);
    sqlite3_bind_int64(st, 3, 1);
    if (r.parent.is_nil())
      sqlite3_bind_null(st, 4);
    else
      sqlite3_bind_blob(st, 4, r.parent.bytes.data(), 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, r.name.data(), static_cast<int>(r.name.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r.extension.data(), static_cast<int>(r.extension.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, static_cast<int64_t>(r.kind));
    sqlite3_bind_int64(st, 8, static_cast<int64_t>(r.size));
    sqlite3_bind_int64(st, 9, static_cast<int64_t>(r.inode));
    sqlite3_bind_int64(st, 10, r.created_ns);
    sqlite3_bind_int64(st, 11, r.modified_ns);
    sqlite3_bind_int64(st, 12, r.accessed_ns);
    sqlite3_bind_null(st, 13);
    sqlite3_bind_int64(st, 14, ++seq);
    sqlite3_bind_int64(st, 15, 0);
    if (sqlite3_step(st) != SQLITE_DONE) Fail(std::string("floor insert: ") + sqlite3_errmsg(db));
    sqlite3_reset(st);
    if (i % 1000 == 999 || i + 1 == rows.size()) Exec(db, "COMMIT");
  }
  double s = Since(t0);
  st_guard.reset();
  guard.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(file.string() + suffix, ec);
  return s;
}

// ---- one run ----

struct BenchRun {
  std::string strategy;
  uint64_t entries = 0;
  double wall_s = 0;
  uint64_t wire_sent = 0, wire_received = 0;  // as seen by B
  uint64_t sender_peak_rss = 0, receiver_peak_rss = 0;
  double floor_s = 0;
  bool estimated = false;
  std::string estimated_from;
  double commit_s = -1;         // bulk: A's bulk commit (generation excluded)
  double prepare_s = -1;        // snapshot: A's background export, before B asked
  double until_current_s = -1;  // bulk: commit + notice + fetch
  uint64_t notice_bytes = 0;    // bulk: one BulkIndexComplete frame
  uint64_t rows_applied = 0;
  double sender_cpu_s = -1, receiver_cpu_s = -1;  // user + sys
  std::string digest;
  uint64_t wire_bytes() const { return wire_sent + wire_received; }
  double records_per_s() const { return wall_s > 0 ? entries / wall_s : 0; }
};

json ToJson(const BenchRun& r) {
  json j{{"strategy", r.strategy},
         {"entries", r.entries},
         {"wall_s", r.wall_s},
         {"wire_bytes", r.wire_bytes()},
         {"wire_sent", r.wire_sent},
         {"wire_received", r.wire_received},
         {"bytes_per_entry", r.entries ? static_cast<double>(r.wire_bytes()) / r.entries : 0},
         {"records_per_s", r.records_per_s()},
         {"sender_peak_rss", r.sender_peak_rss},
         {"receiver_peak_rss", r.receiver_peak_rss},
         {"floor_s", r.floor_s},
         {"x_floor", r.floor_s > 0 ? r.wall_s / r.floor_s : 0},
         {"estimated", r.estimated}};
  if (r.estimated) j["estimated_from"] = r.estimated_from;
  if (!r.digest.empty()) j["digest"] = r.digest;
  if (r.commit_s >= 0) j["commit_s"] = r.commit_s;
  if (r.prepare_s >= 0) j["prepare_s"] = r.prepare_s;
  if (r.until_current_s >= 0) j["commit_to_current_s"] = r.until_current_s;
  if (r.notice_bytes) j["notice_bytes"] = r.notice_bytes;
  if (!r.estimated) j["rows_applied"] = r.rows_applied;
  if (r.sender_cpu_s >= 0) j["sender_cpu_s"] = r.sender_cpu_s;
  if (r.receiver_cpu_s >= 0) j["receiver_cpu_s"] = r.receiver_cpu_s;
  return j;
}

struct Options {
  std::vector<uint64_t> entries{10000, 100000, 1000000};
  std::vector<std::string> strategies{"change", "batch", "bulk", "snapshot"};
  std::string json_file, plot_file, workdir;
  bool keep = false;
  uint64_t change_max = 100000;
  uint64_t seed = 1;
  bool quiet = false;
  uint32_t latency_samples = 200;  // 0 = skip the latency run
  std::string folder;              // index this real folder instead of generating entries
};

// One changed file reaching a connected peer: latency of each sample.
struct LatencyRun {
  uint64_t entries = 0;
  std::vector<double> ms;  // sorted
  double Quantile(double q) const {
    if (ms.empty()) return 0;
    size_t i = std::min(ms.size() - 1, static_cast<size_t>(q * static_cast<double>(ms.size())));
    return ms[i];
  }
};

const char* kGeneratedRoot = "/bench/synthetic";

// Makes A (alpha) and B (beta) in `rd.dir`, paired both ways. A gets
// `a_template`'s files when given (a library holding the N entries).
std::pair<Device, Device> MakePair(RunDir& rd, const fs::path& a_template, uint16_t port_a) {
  fs::path a = rd.dir / "a", b = rd.dir / "b";
  if (!a_template.empty()) {
    fs::copy(a_template, a, fs::copy_options::recursive);
  } else {
    RunOk(rd, "init-a", {"--library", a.string(), "init", "--name", "alpha"});
  }
  Device da = Identify(rd, a);
  RunOk(rd, "init-b", {"--library", b.string(), "init", "--name", "beta", "--join", da.library_id});
  Device db = Identify(rd, b);
  RunOk(rd, "pair-a", {"--library", a.string(), "peer", "add", "--name", "beta", "--id", db.device_id});
  RunOk(rd, "pair-b",
        {"--library", b.string(), "peer", "add", "--name", "alpha", "--id", da.device_id, "--addr",
         "127.0.0.1:" + std::to_string(port_a)});
  return {da, db};
}

// Fills library `lib` with A's entries: N synthetic ones (`debug generate`),
// or with --folder, an index of that real folder (`location add`; its
// commit_s then includes the walk). Returns {entries, max_seq, commit_s}.
json Populate(RunDir& rd, const std::string& label, const fs::path& lib, const Options& o, uint64_t n,
              Exit* x = nullptr) {
  if (o.folder.empty()) {
    return LastJson(RunOk(rd, label,
                          {"--library", lib.string(), "debug", "generate", "--entries", std::to_string(n),
                           "--seed", std::to_string(o.seed)},
                          x));
  }
  Exit ex;
  RunOk(rd, label, {"--library", lib.string(), "location", "add", o.folder}, &ex);
  if (x) *x = ex;
  json st = json::parse(RunOk(rd, "stats", {"--library", lib.string(), "stats", "--json"}));
  for (const auto& owner : st["owners"])
    if (owner.value("local", false))
      return json{{"entries", owner["entries"]}, {"max_seq", owner["max_seq"]}, {"commit_s", ex.wall_s}};
  Fail("no local owner in " + lib.string());
}

// The rows of this device's own index in `lib` (for the floor of --folder).
std::vector<EntryRecord> OwnRows(const fs::path& lib) {
  auto l = Library::Open(lib.string());
  if (!l.ok()) Fail(l.status().message());
  auto me = (*l)->LocalDevice();
  if (!me.ok()) Fail(me.status().message());
  std::vector<EntryRecord> rows;
  Status st = (*l)->ScanOwnerEntries(me->id, Seq(0), me->max_seq, 0, [&](EntryRecord&& e) {
    rows.push_back(std::move(e));
    return true;
  });
  if (!st.ok()) Fail(st.message());
  return rows;
}

pid_t StartServe(RunDir& rd, const std::string& label, const fs::path& lib,
                 const std::vector<std::string>& extra, std::vector<std::string> args = {},
                 fs::path* log = nullptr) {
  for (std::string a : {SelfExe(), std::string("--library"), lib.string(), std::string("serve")})
    args.push_back(a);
  args.insert(args.end(), extra.begin(), extra.end());
  auto [out, err] = rd.Logs(label);
  if (log) *log = err;  // the daemon logs on stderr
  return Spawn(args, out, err);
}

void Verify(RunDir& rd, const Device& a, const Device& b, uint64_t n, BenchRun* r) {
  std::string want = DigestOf(rd, a.dir, "");
  std::string got = DigestOf(rd, b.dir, "alpha");
  if (want != got || want.empty())
    Fail(r->strategy + " at " + std::to_string(n) + " entries: B's digest of alpha " + got +
         " differs from A's " + want + " (libraries kept in " + rd.dir.string() + ")");
  r->digest = want;
}

// change / batch / snapshot: B runs `entrysync sync` against A's daemon.
BenchRun RunPull(const Options& o, const std::string& strategy, uint64_t n, const fs::path& a_template,
                 RunDir& rd) {
  BenchRun r;
  r.strategy = strategy;
  r.entries = n;
  uint16_t port = FreePort();
  auto [a, b] = MakePair(rd, a_template, port);
  fs::path a_log;
  std::vector<std::string> serve_args{"--listen", "127.0.0.1:" + std::to_string(port)};
  // A prepares its snapshot whatever N (the default threshold is 100,000).
  if (strategy == "snapshot") serve_args.insert(serve_args.end(), {"--snapshot-threshold", "1"});
  pid_t server = StartServe(rd, "serve-a", a.dir, serve_args, Wrapper("ENTRYSYNC_BENCH_WRAP_SENDER"), &a_log);
  WaitFor(
      "A to listen on port " + std::to_string(port), 120, [&] { return PortOpen(port); }, server);
  if (strategy == "snapshot") {
    // A new device joins an owner whose daemon has been up: its index is
    // settled and its snapshot prepared (export timed apart, prepare_s).
    std::smatch m;
    static const std::regex kPrepared(R"(prepared a snapshot of .* in ([0-9.]+)s)");
    WaitFor(
        "A to prepare its snapshot", 600,
        [&] {
          std::string text = ReadFile(a_log);
          if (!std::regex_search(text, m, kPrepared)) return false;
          r.prepare_s = std::stod(m[1]);
          return true;
        },
        server);
  }
  double sender_cpu0 = CpuSeconds(server);
  Exit x;
  std::string out = RunOk(rd, "sync-b",
                          {"--library", b.dir.string(), "sync", "--peer", "alpha", "--strategy", strategy,
                           "--json", "--timeout", "1800"},
                          &x, Wrapper("ENTRYSYNC_BENCH_WRAP_RECEIVER"));
  r.wall_s = x.wall_s;
  r.receiver_peak_rss = static_cast<uint64_t>(x.ru.ru_maxrss) * 1024;
  r.receiver_cpu_s = CpuSeconds(x.ru);
  r.sender_peak_rss = PeakRss(server);
  r.sender_cpu_s = CpuSeconds(server) - sender_cpu0;
  Exit sx = Stop(server);
  if (!WIFEXITED(sx.status) || WEXITSTATUS(sx.status) != 0)
    std::fprintf(stderr, "bench: warning: A's daemon ended with %s\n", Describe(sx).c_str());
  json summary = LastJson(out);
  r.wire_sent = summary.value("wire_sent", 0ULL);
  r.wire_received = summary.value("wire_received", 0ULL);
  r.rows_applied = summary.value("rows_applied", 0ULL);
  Verify(rd, a, b, n, &r);
  return r;
}

uint64_t NoticeFrameBytes(uint64_t n) {
  wire::BulkIndexComplete msg;
  msg.set_owner(std::string(16, '\x42'));
  msg.set_location(std::string(16, '\x43'));
  msg.set_entry_count(n);
  msg.set_max_seq(static_cast<int64_t>(n + 1));
  msg.set_epoch(0x1234567890abcdefULL);
  msg.set_time_ms(WallMs());
  return EncodeFrame(msg).size();
}

// bulk: B's daemon is connected to A's before A's bulk commit; A's daemon
// announces it; B fetches in the background. Timed from the end of the
// commit (the generating process's exit) until B's watermark of A reaches
// A's max seq.
BenchRun RunBulk(const Options& o, uint64_t n, RunDir& rd) {
  BenchRun r;
  r.strategy = "bulk";
  r.entries = n;
  uint16_t port = FreePort();
  auto [a, b] = MakePair(rd, {}, port);
  pid_t server = StartServe(rd, "serve-a", a.dir, {"--listen", "127.0.0.1:" + std::to_string(port)});
  WaitFor(
      "A to listen", 30, [&] { return PortOpen(port); }, server);
  pid_t client = StartServe(rd, "serve-b", b.dir, {"--strategy", "bulk"});
  WaitFor(
      "B to connect to A and be current", 60,
      [&] {
        json st = ReadStatus(b.dir);
        if (st.is_null() || !st.contains("sessions")) return false;
        for (const auto& s : st["sessions"])
          if (s.value("state", "") == "current") return true;
        return false;
      },
      client);
  WatermarkProbe probe(b.dir, a.uuid);
  Exit gx;
  auto t_commit = Clock::now();
  json gen = Populate(rd, "generate-a", a.dir, o, n, &gx);
  auto t0 = Clock::now();
  int64_t target = gen["max_seq"];
  r.commit_s = gen["commit_s"];
  WaitFor(
      "B to fetch alpha's bulk index", 1800, [&] { return probe.Seq() >= target; }, client);
  r.wall_s = Since(t0);
  r.until_current_s = r.commit_s + r.wall_s + (Since(t_commit) - r.wall_s - gx.wall_s);
  // Wire bytes: from B's status file, written twice a second.
  int64_t done_ms = WallMs();
  json st;
  WaitFor(
      "B's status file to catch up", 10,
      [&] {
        st = ReadStatus(b.dir);
        return !st.is_null() && st.value("updated_ms", int64_t{0}) > done_ms + 50;
      },
      client);
  for (const auto& s : st["sessions"]) {
    r.wire_sent += s.value("wire_sent", 0ULL);
    r.wire_received += s.value("wire_received", 0ULL);
    r.rows_applied += s.value("rows_applied", 0ULL);
  }
  r.receiver_peak_rss = PeakRss(client);
  r.sender_peak_rss = PeakRss(server);
  r.receiver_cpu_s = CpuSeconds(client);
  r.sender_cpu_s = CpuSeconds(server);
  Stop(client);
  Stop(server);
  r.notice_bytes = NoticeFrameBytes(n);
  Verify(rd, a, b, n, &r);
  return r;
}

// latency: A's and B's daemons connected and current; this process renames
// one file of A's (one CommitChanges on A's library, as `rescan` would) and
// waits until B's watermark of A covers the new seq. Timed from just before
// the commit to the moment the probe sees B's commit. Samples are spaced by
// 20 ms so each one is a single change on an idle connection.
LatencyRun RunLatency(const Options& o, uint64_t n, RunDir& rd) {
  LatencyRun lr;
  lr.entries = n;
  uint16_t port = FreePort();
  auto [a, b] = MakePair(rd, {}, port);
  RunOk(rd, "generate-a",
        {"--library", a.dir.string(), "debug", "generate", "--entries", std::to_string(n), "--seed",
         std::to_string(o.seed)});
  pid_t server = StartServe(rd, "serve-a", a.dir, {"--listen", "127.0.0.1:" + std::to_string(port)});
  WaitFor(
      "A to listen", 30, [&] { return PortOpen(port); }, server);
  pid_t client = StartServe(rd, "serve-b", b.dir, {});
  auto lib = Library::Open(a.dir.string());
  if (!lib.ok()) Fail(lib.status().message());
  auto locs = (*lib)->ListLocations((*lib)->local_device());
  if (!locs.ok() || locs->empty()) Fail("A has no location");
  auto me = (*lib)->LocalDevice();
  if (!me.ok()) Fail(me.status().message());
  WatermarkProbe probe(b.dir, a.uuid);
  WaitFor(
      "B to be current with A", 120, [&] { return probe.Seq() >= me->max_seq.value(); }, client);
  std::vector<EntryRecord> files;
  auto scan = (*lib)->ScanOwnerEntries((*lib)->local_device(), Seq(0), me->max_seq, 0, [&](EntryRecord&& e) {
    if (e.kind == EntryKind::kFile && files.size() < o.latency_samples) files.push_back(std::move(e));
    return files.size() < o.latency_samples;
  });
  if (!scan.ok() || files.empty()) Fail("no files to rename in A");
  EventBus bus;
  TransactionManager tm(**lib, bus);
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<EntryRecord> change{files[i]};
    change[0].name = "renamed-" + std::to_string(i) + "-" + change[0].name;
    auto t0 = Clock::now();
    auto seq = tm.CommitChanges((*locs)[0], change);
    if (!seq.ok()) Fail(seq.status().message());
    auto deadline = t0 + std::chrono::seconds(10);
    while (probe.Seq() < seq->value()) {
      if (Clock::now() > deadline) Fail("a rename did not reach B within 10 s");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    lr.ms.push_back(Since(t0) * 1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Stop(client);
  Stop(server);
  std::sort(lr.ms.begin(), lr.ms.end());
  return lr;
}

// ---- output ----

std::string Thousands(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string MB(uint64_t b) { return Fmt("%.1f", b / 1e6); }

std::string Seconds(double s) { return s < 10 ? Fmt("%.2f", s) : s < 100 ? Fmt("%.1f", s) : Fmt("%.0f", s); }

const char* LongName(const std::string& s) {
  if (s == "change") return "individual StateChange";
  if (s == "batch") return "StateBatch";
  if (s == "bulk") return "bulk notice + background fetch";
  if (s == "snapshot") return "snapshot";
  return "?";
}

std::string Table(const std::vector<BenchRun>& runs, const std::map<uint64_t, double>& floors) {
  std::string t =
      "| strategy | entries | wall s | x floor | records/s | wire MB (both ways) | bytes/entry | sender peak "
      "RSS MB "
      "| receiver peak RSS MB |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [n, f] : floors)
    t += "| floor: bare SQLite, batches of 1000 | " + Thousands(n) + " | " + Seconds(f) + " | 1.00 | " +
         Thousands(static_cast<uint64_t>(n / f)) + " | - | - | - | - |\n";
  for (const auto& r : runs) {
    std::string name = LongName(r.strategy);
    if (r.estimated) name += " (**estimated** from " + r.estimated_from + ")";
    if (r.prepare_s >= 0) name += " (A's export prepared beforehand: " + Seconds(r.prepare_s) + " s)";
    t += "| " + name + " | " + Thousands(r.entries) + " | " + Seconds(r.wall_s) + " | " +
         (r.floor_s > 0 ? Fmt("%.2f", r.wall_s / r.floor_s) : "-") + " | " +
         Thousands(static_cast<uint64_t>(r.records_per_s())) + " | " + MB(r.wire_bytes()) + " | " +
         Fmt("%.1f", static_cast<double>(r.wire_bytes()) / r.entries) + " | " +
         (r.estimated ? "-" : MB(r.sender_peak_rss)) + " | " + (r.estimated ? "-" : MB(r.receiver_peak_rss)) +
         " |\n";
  }
  return t;
}

std::string SeedTable(const std::vector<BenchRun>& runs) {
  uint64_t n = 0;
  for (const auto& r : runs) n = std::max(n, r.entries);
  std::map<std::string, std::string> seed{{"change", "500 MB / 10 min"},
                                          {"batch", "50 MB / 2 min"},
                                          {"bulk", "1 KB / async"},
                                          {"snapshot", "150 MB / 30 s"}};
  std::string t = "| Strategy | seed estimate, 1M entries (data / time) | measured, " + Thousands(n) +
                  " entries (data / time) |\n|---|---|---|\n";
  for (const char* s : {"change", "batch", "bulk", "snapshot"}) {
    for (const auto& r : runs) {
      if (r.strategy != s || r.entries != n) continue;
      std::string m = MB(r.wire_bytes()) + " MB / " + Seconds(r.wall_s) + " s";
      if (r.strategy == "bulk")
        m = std::to_string(r.notice_bytes) + " B notice (frame) / async; fetch " + MB(r.wire_bytes()) +
            " MB in " + Seconds(r.wall_s) + " s after the commit";
      if (r.estimated) m += " (estimated from " + r.estimated_from + ")";
      if (r.prepare_s >= 0) m += " (+ " + Seconds(r.prepare_s) + " s export, done before the peer asked)";
      t += std::string("| ") + LongName(s) + " | " + seed[s] + " | " + m + " |\n";
    }
  }
  return t;
}

void Plot(const std::vector<BenchRun>& runs, const std::map<uint64_t, double>& floors, const fs::path& png,
          const fs::path& work) {
  fs::path dat = work / "plot.dat", gp = work / "plot.gp";
  std::ofstream d(dat);
  std::vector<std::string> series;
  for (const char* s : {"change", "batch", "bulk", "snapshot"}) {
    bool any = false;
    for (const auto& r : runs)
      if (r.strategy == s) {
        if (!any) d << "# " << s << "\n";
        any = true;
        d << r.entries << " " << r.wall_s << " " << r.wire_bytes() << " " << (r.estimated ? 1 : 0) << "\n";
      }
    if (any) {
      d << "\n\n";
      series.push_back(s);
    }
  }
  d << "# floor\n";
  for (const auto& [n, f] : floors) d << n << " " << f << " 0 0\n";
  d.close();
  std::ofstream g(gp);
  g << "set terminal pngcairo size 1100,450 font ',10'\n"
    << "set output '" << png.string() << "'\n"
    << "set multiplot layout 1,2 title 'entrysync bench: A -> B, two processes, TLS on loopback'\n"
    << "set logscale xy\nset grid\nset key top left\nset xlabel 'entries'\nset format x '%.0s%c'\n"
    << "set ylabel 'wall seconds until B is current'\n";
  g << "plot ";
  for (size_t i = 0; i < series.size(); ++i)
    g << "'" << dat.string() << "' index " << i << " using 1:2 with linespoints lw 2 title '" << series[i]
      << (series[i] == "change" ? " (dashed point: estimated)" : "") << "', ";
  g << "'" << dat.string() << "' index " << series.size()
    << " using 1:2 with linespoints lw 2 dt 2 lc rgb 'black' title 'floor: bare SQLite'\n";
  g << "set ylabel 'bytes on the wire (both directions)'\nset format y '%.0s%cB'\nplot ";
  for (size_t i = 0; i < series.size(); ++i)
    g << (i ? ", " : "") << "'" << dat.string() << "' index " << i
      << " using 1:3 with linespoints lw 2 title '" << series[i] << "'";
  g << "\nunset multiplot\n";
  g.close();
  std::string cmd = "gnuplot '" + gp.string() + "' 2>'" + (work / "gnuplot.err").string() + "'";
  if (std::system(cmd.c_str()) != 0)
    Fail("gnuplot failed (is gnuplot installed? apt-get install gnuplot-nox): " +
         Tail(ReadFile(work / "gnuplot.err")));
}

std::vector<std::string> SplitCsv(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

uint64_t ParseCount(const std::string& s) {
  // 10000, 10K, 1M
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  std::string unit = end ? std::string(end) : "";
  if (unit == "K" || unit == "k")
    v *= 1e3;
  else if (unit == "M" || unit == "m")
    v *= 1e6;
  else if (!unit.empty() || v < 1)
    Fail("--entries: '" + s + "' is not a count");
  return static_cast<uint64_t>(v + 0.5);
}

Status RunBench(Options o) {
  KillLeftovers cleanup;
  bool temp = o.workdir.empty();
  fs::path work = temp ? fs::temp_directory_path() / ("entrysync-bench-" + std::to_string(getpid()))
                       : fs::path(o.workdir);
  work = fs::absolute(work);
  std::error_code ec;
  fs::create_directories(work, ec);
  if (ec) return IOError("create " + work.string() + ": " + ec.message());
  std::sort(o.entries.begin(), o.entries.end());
  std::vector<BenchRun> runs;
  std::map<uint64_t, double> floors;
  std::optional<LatencyRun> latency;
  auto log = [&](const std::string& s) {
    if (!o.quiet) std::fprintf(stderr, "bench: %s\n", s.c_str());
  };
  try {
    for (uint64_t n : o.entries) {
      // One library A holding the N entries, copied for every pull run
      // (with --folder: always, it tells N).
      fs::path tmpl = work / ("a-" + std::to_string(n));
      bool need_template = !o.folder.empty();
      for (const auto& s : o.strategies) need_template |= s != "bulk";
      if (need_template) {
        fs::remove_all(tmpl, ec);
        RunDir rd{work / ("template-" + std::to_string(n))};
        fs::remove_all(rd.dir, ec);
        fs::create_directories(rd.dir / "logs");
        RunOk(rd, "init", {"--library", tmpl.string(), "init", "--name", "alpha"});
        json gen = Populate(rd, "generate", tmpl, o, n);
        if (!o.folder.empty()) n = gen["entries"];
        log((o.folder.empty() ? "generated A with " : "indexed " + o.folder + " into A: ") + Thousands(n) +
            " entries: " + gen.dump());
      }
      // Floor, with nothing else running: the same rows into bare SQLite.
      {
        auto rows = o.folder.empty() ? bench::MakeSyntheticTree(n, o.seed) : OwnRows(tmpl);
        floors[n] = FloorSeconds(work / "floor.db", rows);
        log("floor " + Thousands(n) + ": " + Seconds(floors[n]) + " s");
      }
      for (const auto& s : o.strategies) {
        if (s == "change" && n > o.change_max) {
          const BenchRun* base = nullptr;
          for (const auto& r : runs)
            if (r.strategy == "change" && !r.estimated && (!base || r.entries > base->entries)) base = &r;
          if (base) {
            BenchRun e = *base;
            double k = static_cast<double>(n) / base->entries;
            e.entries = n;
            e.wall_s = base->wall_s * k;
            e.wire_sent = static_cast<uint64_t>(base->wire_sent * k);
            e.wire_received = static_cast<uint64_t>(base->wire_received * k);
            e.floor_s = floors[n];
            e.estimated = true;
            e.estimated_from = Thousands(base->entries) + " x " + Fmt("%.0f", k);
            e.digest.clear();
            runs.push_back(e);
            log("change " + Thousands(n) + ": estimated from " + Thousands(base->entries));
            continue;
          }
        }
        RunDir rd{work / (s + "-" + std::to_string(n))};
        fs::remove_all(rd.dir, ec);
        fs::create_directories(rd.dir / "logs");
        log(s + " " + Thousands(n) + " ...");
        BenchRun r = s == "bulk" ? RunBulk(o, n, rd) : RunPull(o, s, n, tmpl, rd);
        r.floor_s = floors[n];
        log(s + " " + Thousands(n) + ": " + ToJson(r).dump());
        runs.push_back(r);
        if (!o.keep) fs::remove_all(rd.dir, ec);
      }
      if (!o.keep) fs::remove_all(tmpl, ec);
    }
    if (o.latency_samples > 0) {
      uint64_t n = o.folder.empty() ? o.entries.front() : 10000;  // synthetic either way
      RunDir rd{work / ("latency-" + std::to_string(n))};
      fs::remove_all(rd.dir, ec);
      fs::create_directories(rd.dir / "logs");
      log("latency: " + std::to_string(o.latency_samples) + " single renames on a library of " +
          Thousands(n) + " entries ...");
      latency = RunLatency(o, n, rd);
      if (!o.keep) fs::remove_all(rd.dir, ec);
    }
  } catch (const std::exception& e) {
    return Aborted(std::string("bench: ") + e.what() + " (logs and libraries under " + work.string() + ")");
  }
  std::string table = Table(runs, floors);
  std::printf("%s\n%s", table.c_str(), SeedTable(runs).c_str());
  if (latency) {
    std::printf(
        "\nOne changed file reaching a connected peer (%zu renames, library of %s entries): "
        "p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
        latency->ms.size(), Thousands(latency->entries).c_str(), latency->Quantile(0.5),
        latency->Quantile(0.99), latency->ms.back());
  }
  std::fflush(stdout);
  if (!o.json_file.empty()) {
    json doc{{"runs", json::array()}};
    for (const auto& r : runs) doc["runs"].push_back(ToJson(r));
    for (const auto& [n, f] : floors) doc["floor"].push_back({{"entries", n}, {"floor_s", f}});
    if (latency)
      doc["latency"] = {{"entries", latency->entries},
                        {"samples", latency->ms.size()},
                        {"p50_ms", latency->Quantile(0.5)},
                        {"p99_ms", latency->Quantile(0.99)},
                        {"max_ms", latency->ms.back()}};
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    doc["machine"] = {{"cores", std::thread::hardware_concurrency()}, {"host", host}};
    std::ofstream(o.json_file) << doc.dump(2) << "\n";
  }
  try {
    if (!o.plot_file.empty()) Plot(runs, floors, fs::absolute(o.plot_file), work);
  } catch (const BenchError& e) {
    return Aborted(std::string("bench: ") + e.what());
  }
  if (temp && !o.keep) fs::remove_all(work, ec);
  return Status::Ok();
}

}  // namespace

std::vector<Command> AddBench(CLI::App& app, Globals& g) {
  std::vector<Command> out;
  // ---- bench ----
  auto* sub = app.add_subcommand("bench", "Measure every sync strategy end to end (see bench/README.md)");
  auto o = std::make_shared<Options>();
  auto entries = std::make_shared<std::string>("10000,100000,1000000");
  auto strategies = std::make_shared<std::string>("change,batch,bulk,snapshot");
  sub->add_option("--entries", *entries, "Comma-separated entry counts (10000,100K,1M)");
  sub->add_option("--strategies", *strategies, "Comma-separated: change,batch,bulk,snapshot");
  sub->add_option("--json", o->json_file, "Write {\"runs\": [...]} to FILE");
  sub->add_option("--plot", o->plot_file, "Draw time and bytes vs entries to FILE.png (gnuplot)");
  sub->add_option("--workdir", o->workdir, "Folder for the libraries and logs (default: a temp folder)");
  sub->add_flag("--keep", o->keep, "Keep the libraries and logs of every run");
  sub->add_option(
      "--change-max", o->change_max,
      "Above this many entries, individual StateChange is estimated from the largest measured run");
  sub->add_option("--seed", o->seed, "Synthetic tree seed");
  sub->add_flag("--quiet", o->quiet, "No progress lines on stderr");
  sub->add_option("--folder", o->folder,
                  "Index this real folder as A's entries instead of a synthetic tree (--entries is ignored)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--latency", o->latency_samples,
                  "Single renames timed from A's commit to B's (0 = skip), on the smallest library");
  out.push_back({sub, [o, entries, strategies]() -> Status {
                   Options opt = *o;
                   try {
                     opt.entries.clear();
                     for (const auto& e : SplitCsv(*entries)) opt.entries.push_back(ParseCount(e));
                   } catch (const BenchError& e) {
                     return InvalidArgument(e.what());
                   }
                   if (!opt.folder.empty()) opt.entries = {0};  // N is the folder's
                   opt.strategies = SplitCsv(*strategies);
                   for (const auto& s : opt.strategies)
                     if (s != "change" && s != "batch" && s != "bulk" && s != "snapshot")
                       return InvalidArgument("--strategies: unknown strategy '" + s + "'");
                   if (opt.entries.empty() || opt.strategies.empty())
                     return InvalidArgument("nothing to run");
                   return RunBench(opt);
                 }});
  // ---- debug generate (hidden) ----
  auto* debug = app.add_subcommand("debug", "Developer tools");
  debug->group("");  // hidden from --help
  debug->require_subcommand(1);
  auto* gen = debug->add_subcommand("generate", "Bulk-commit N synthetic entries as a new location");
  auto n = std::make_shared<uint64_t>(10000);
  auto seed = std::make_shared<uint64_t>(1);
  auto root = std::make_shared<std::string>(kGeneratedRoot);
  gen->add_option("--entries", *n, "How many entries")->required();
  gen->add_option("--seed", *seed, "Tree seed");
  gen->add_option("--root", *root, "The location's root path (need not exist)");
  out.push_back({gen, [&g, n, seed, root]() -> Status {
                   ES_ASSIGN_OR_RETURN(std::string dir, g.LibraryDir());
                   ES_ASSIGN_OR_RETURN(auto lib, Library::Open(dir));
                   EventBus bus;
                   TransactionManager tm(*lib, bus);
                   auto t0 = Clock::now();
                   auto rows = bench::MakeSyntheticTree(*n, *seed);
                   double gen_s = Since(t0);
                   std::string path = *root;
                   auto existing = lib->FindLocalLocationByPath(path);
                   for (int i = 2; existing.ok(); ++i) {
                     path = *root + "-" + std::to_string(i);
                     existing = lib->FindLocalLocationByPath(path);
                   }
                   ES_ASSIGN_OR_RETURN(LocationInfo loc,
                                       tm.AddLocation(path, fs::path(path).filename().string()));
                   t0 = Clock::now();
                   ES_ASSIGN_OR_RETURN(auto ev, tm.CommitBulkEntries(loc, rows));
                   double commit_s = Since(t0);
                   json out{{"entries", rows.size()},
                            {"location", path},
                            {"max_seq", ev.max_seq.value()},
                            {"generate_s", gen_s},
                            {"commit_s", commit_s}};
                   std::cout << out.dump() << std::endl;
                   return Status::Ok();
                 }});
  return out;
}

}  // namespace entrysync::cli
