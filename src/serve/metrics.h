#pragma once
// graft serve's counters, in Prometheus' text exposition format (version
// 0.0.4): requests by status, request latency, batch sizes per model, queue
// depth per model. Thread-safe.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace graft::serve {

/// A cumulative histogram over fixed upper bounds (the last, +Inf, implied).
class ServeHistogram {
 public:
  explicit ServeHistogram(std::vector<double> bounds);
  void observe(double v);
  /// NAME_bucket{LABELS,le="..."}, NAME_sum, NAME_count lines.
  void write(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; last: +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServeMetrics {
 public:
  ServeMetrics();
  /// One answered request: its status and (when known, >= 0) its seconds
  /// from routing to the answer.
  void request(int status, double seconds);
  /// One batch of `size` inputs run by `model`.
  void batch(const std::string& model, int64_t size);
  /// The exposition, with each model's queue depth now.
  std::string text(const std::vector<std::pair<std::string, size_t>>& queue_depths) const;
  /// Requests answered with `status` so far (tests).
  uint64_t requests(int status) const;
  /// Largest batch `model` ran so far (tests).
  int64_t largest_batch(const std::string& model) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> by_status_;
  ServeHistogram latency_;
  std::map<std::string, ServeHistogram> batches_;
  std::map<std::string, int64_t> largest_;
};

}  // namespace graft::serve
