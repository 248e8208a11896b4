// Terminal output helpers for the CLI.
#pragma once

#include <cstdint>
#include <string>

namespace entrysync::cli {

// True when stderr is a terminal (progress lines are drawn only then).
bool StderrIsTerminal();

// "1.2M", "34.5K", "999".
std::string HumanCount(double n);
// "12.3 MB".
std::string HumanBytes(double n);

// A redrawn one-line progress display on stderr; silent when stderr is not
// a terminal. Not thread-safe.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  ~ProgressLine();
  // done of total (total 0 = unknown), bytes so far; redraws at most 10x/s.
  void Update(uint64_t done, uint64_t total, uint64_t bytes = 0, bool force = false);
  // Ends the line.
  void Finish();

 private:
  std::string label_;
  bool tty_;
  bool open_ = false;
  double start_;
  double last_draw_ = -1;
};

}  // namespace entrysync::cli
