#include "cli/output.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace entrysync::cli {
namespace {
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

std::string HumanCount(double n) {
  char buf[32];
  if (n >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fK", n / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

std::string HumanBytes(double n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (n >= 1000 && u < 4) {
    n /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
  return buf;
}

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)), tty_(StderrIsTerminal()), start_(Now()) {}

ProgressLine::~ProgressLine() { Finish(); }

void ProgressLine::Update(uint64_t done, uint64_t total, uint64_t bytes, bool force) {
  if (!tty_) return;
  double now = Now();
  if (!force && last_draw_ >= 0 && now - last_draw_ < 0.1) return;
  last_draw_ = now;
  double elapsed = now - start_;
  double rate = elapsed > 0 ? done / elapsed : 0;
  std::string line = "\r\033[K" + label_ + " ";
  if (total > 0) {
    double frac = static_cast<double>(done) / static_cast<double>(total);
    if (frac > 1) frac = 1;
    int filled = static_cast<int>(frac * 30);
    line += "[" + std::string(filled, '#') + std::string(30 - filled, '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", frac * 100);
    line += pct;
    line += HumanCount(done) + "/" + HumanCount(total);
  } else {
    line += HumanCount(done) + " entries";
  }
  line += "  " + HumanCount(rate) + "/s";
  if (bytes > 0) line += "  " + HumanBytes(bytes);
  if (total > 0 && rate > 0 && done < total) {
    char eta[32];
    std::snprintf(eta, sizeof eta, "  ETA %.0fs", (total - done) / rate);
    line += eta;
  }
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  open_ = true;
}

void ProgressLine::Finish() {
  if (open_) {
    std::fputs("\n", stderr);
    open_ = false;
  }
}

}  // namespace entrysync::cli
