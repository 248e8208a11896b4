// The child processes of strategies_bench: every figure it reports comes from
// real `entrysync` processes started, watched and stopped here.
//
// Failures throw BenchError (caught once, in main). Not thread-safe: the
// bench is one thread that starts children and waits for them.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace entrysync::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void Fail(const std::string& why);

double Since(Clock::time_point t0);
int64_t WallMs();
std::string ReadFile(const fs::path& p);
std::string Tail(const std::string& s, size_t n = 2000);

// How one child ended: wait status, its resource usage, wall seconds.
struct Exit {
  int status = 0;
  rusage ru{};
  double wall_s = 0;
};
bool Succeeded(const Exit& x);
std::string Describe(const Exit& x);

// One run's folder: its libraries, and in logs/ the stdout and stderr of
// each child it started, numbered in order. `entrysync` is the binary every
// child runs.
struct RunDir {
  fs::path dir;
  std::string entrysync;
  int n = 0;
  std::pair<fs::path, fs::path> Logs(const std::string& label);
};

// $NAME split on spaces ("valgrind --tool=callgrind"): a profiler to run one
// side under (ENTRYSYNC_BENCH_WRAP_RECEIVER, ENTRYSYNC_BENCH_WRAP_SENDER).
std::vector<std::string> Wrapper(const char* name);

// Runs `entrysync ARGS...` (prefixed by `wrap`) to completion; returns its
// stdout, or fails with the tail of its stderr. `exit`, if given, gets how
// it ended.
std::string RunOk(RunDir& rd, const std::string& label, const std::vector<std::string>& args,
                  Exit* exit = nullptr, std::vector<std::string> wrap = {});

// Starts `entrysync --library LIB serve EXTRA...` (prefixed by `wrap`) and
// returns its pid; `log`, if given, gets the file its stderr (the daemon's
// log) goes to.
pid_t StartServe(RunDir& rd, const std::string& label, const fs::path& lib,
                 const std::vector<std::string>& extra, std::vector<std::string> wrap = {},
                 fs::path* log = nullptr);

// Stops a daemon with SIGTERM (SIGKILL after 30 s); returns how it ended.
Exit Stop(pid_t pid);

// Kills (SIGKILL) and reaps every child still running when it goes out of
// scope: a bench that fails half-way leaves no daemon behind.
struct KillLeftovers {
  ~KillLeftovers();
};

// The last line of `out` that is a JSON object (spdlog also writes to stdout).
json LastJson(const std::string& out);

// Peak resident set (VmHWM) of a running process, bytes.
uint64_t PeakRss(pid_t pid);
// CPU seconds (user + sys) a running process used so far.
double CpuSeconds(pid_t pid);
// CPU seconds (user + sys) in a finished child's rusage.
double CpuSeconds(const rusage& ru);

// A TCP port on 127.0.0.1 that was free a moment ago.
uint16_t FreePort();
// Whether something accepts connections on 127.0.0.1:port.
bool PortOpen(uint16_t port);

// Polls `ready` every 5 ms; fails after `timeout_s`, or as soon as the child
// `must_live` (if > 0) has exited.
void WaitFor(const std::string& what, double timeout_s, const std::function<bool()>& ready,
             pid_t must_live = 0);

}  // namespace entrysync::bench
