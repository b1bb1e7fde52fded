#include "graft/core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <mutex>

namespace graft {

namespace {
std::atomic<bool> g_quiet{false};
std::mutex g_log_mutex;
}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }
bool is_quiet() { return g_quiet; }

void log_info(const std::string& msg) {
  if (g_quiet) return;
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::cerr << msg << "\n";
}

void log_warn(const std::string& msg) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::cerr << "warning: " << msg << "\n";
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      live_(enabled && !g_quiet && isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  double s = elapsed_seconds();
  return s > 0 ? done_ / s : 0.0;
}

void Progress::advance(int64_t n) {
  done_ += n;
  if (!live_) return;
  auto now = std::chrono::steady_clock::now();
  if (done_ < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double r = rate();
  double eta = r > 0 ? (total_ - done_) / r : 0.0;
  int width = 30;
  int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
  std::string bar(filled, '#');
  bar.resize(width, '.');
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.1f/s  ETA %.0fs   ", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), r, eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!live_) return;
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace graft
