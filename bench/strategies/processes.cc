#include "strategies/processes.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace entrysync::bench {
namespace {

// Children still running; killed if the bench fails half-way.
std::vector<pid_t>& LiveChildren() {
  static std::vector<pid_t> live;
  return live;
}

void Forget(pid_t pid) {
  auto& live = LiveChildren();
  live.erase(std::remove(live.begin(), live.end(), pid), live.end());
}

pid_t Spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
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
  Forget(pid);
  return x;
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

}  // namespace

void Fail(const std::string& why) { throw BenchError(why); }

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ReadFile(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t n) { return s.size() > n ? s.substr(s.size() - n) : s; }

bool Succeeded(const Exit& x) { return WIFEXITED(x.status) && WEXITSTATUS(x.status) == 0; }

std::string Describe(const Exit& x) {
  if (WIFEXITED(x.status)) return "exit code " + std::to_string(WEXITSTATUS(x.status));
  if (WIFSIGNALED(x.status)) return "signal " + std::to_string(WTERMSIG(x.status));
  return "status " + std::to_string(x.status);
}

std::pair<fs::path, fs::path> RunDir::Logs(const std::string& label) {
  ++n;
  std::string base = std::to_string(n) + "-" + label;
  return {dir / "logs" / (base + ".out"), dir / "logs" / (base + ".err")};
}

std::vector<std::string> Wrapper(const char* name) {
  std::vector<std::string> out;
  const char* v = std::getenv(name);
  if (!v) return out;
  std::stringstream ss(v);
  std::string w;
  while (ss >> w) out.push_back(w);
  return out;
}

std::string RunOk(RunDir& rd, const std::string& label, const std::vector<std::string>& args, Exit* exit,
                  std::vector<std::string> wrap) {
  wrap.push_back(rd.entrysync);
  wrap.insert(wrap.end(), args.begin(), args.end());
  auto [out, err] = rd.Logs(label);
  auto t0 = Clock::now();
  pid_t pid = Spawn(wrap, out, err);
  Exit x = Wait(pid, t0);
  if (!Succeeded(x)) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    Fail("'entrysync" + cmd + "' failed (" + Describe(x) + "): " + Tail(ReadFile(err)));
  }
  if (exit) *exit = x;
  return ReadFile(out);
}

pid_t StartServe(RunDir& rd, const std::string& label, const fs::path& lib,
                 const std::vector<std::string>& extra, std::vector<std::string> wrap, fs::path* log) {
  for (const std::string& a : {rd.entrysync, std::string("--library"), lib.string(), std::string("serve")})
    wrap.push_back(a);
  wrap.insert(wrap.end(), extra.begin(), extra.end());
  auto [out, err] = rd.Logs(label);
  if (log) *log = err;  // the daemon logs on stderr
  return Spawn(wrap, out, err);
}

Exit Stop(pid_t pid) {
  kill(pid, SIGTERM);
  auto t0 = Clock::now();
  for (;;) {
    int status = 0;
    rusage ru{};
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid) {
      Forget(pid);
      return Exit{status, ru, Since(t0)};
    }
    if (Since(t0) > 30) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

KillLeftovers::~KillLeftovers() {
  for (pid_t p : LiveChildren()) {
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
  }
  LiveChildren().clear();
}

json LastJson(const std::string& out) {
  std::stringstream ss(out);
  std::string line, last;
  while (std::getline(ss, line))
    if (!line.empty() && line[0] == '{') last = line;
  if (last.empty()) Fail("no JSON in the output: " + Tail(out, 500));
  return json::parse(last);
}

uint64_t PeakRss(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

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

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(0);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    Fail("cannot find a free port");
  close(fd);
  return ntohs(a.sin_port);
}

bool PortOpen(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

void WaitFor(const std::string& what, double timeout_s, const std::function<bool()>& ready, pid_t must_live) {
  auto t0 = Clock::now();
  while (!ready()) {
    if (must_live > 0) {
      int st = 0;
      if (waitpid(must_live, &st, WNOHANG) == must_live) {
        Forget(must_live);
        Fail("a daemon exited while waiting for " + what);
      }
    }
    if (Since(t0) > timeout_s) Fail("timed out waiting for " + what);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace entrysync::bench
