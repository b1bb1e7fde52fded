#pragma once
/// Progress: a live bar with items/s and ETA on a terminal; silent otherwise
/// (the caller prints one line per epoch).

#include <chrono>
#include <cstdint>
#include <string>

namespace graft {

class Progress {
 public:
  /// `total` items; `label` shown before the bar. Draws only when stderr is a
  /// terminal and `enabled` is true.
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress();
  /// Adds `n` finished items and redraws at most ten times a second.
  void advance(int64_t n);
  /// Clears the bar line.
  void finish();
  /// Items per second since construction.
  double rate() const;
  double elapsed_seconds() const;

 private:
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool live_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// Messages for the user on stderr (never stdout: stdout carries results).
void log_info(const std::string& msg);
void log_warn(const std::string& msg);
/// Silences log_info (tests; --quiet).
void set_quiet(bool quiet);
bool is_quiet();

}  // namespace graft
