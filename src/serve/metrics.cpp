#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace graft::serve {

namespace {

std::string prom_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

std::string with_label(const std::string& labels, const std::string& more) {
  return "{" + (labels.empty() ? more : labels + "," + more) + "}";
}

const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

}  // namespace

ServeHistogram::ServeHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void ServeHistogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void ServeHistogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    out += name + "_bucket" + with_label(labels, "le=\"" + prom_number(le) + "\"") + " " +
           std::to_string(cumulative) + "\n";
  }
  const std::string l = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + l + " " + prom_number(sum_) + "\n";
  out += name + "_count" + l + " " + std::to_string(count_) + "\n";
}

ServeMetrics::ServeMetrics()
    : latency_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}) {}

void ServeMetrics::request(int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++by_status_[status];
  if (seconds >= 0) latency_.observe(seconds);
}

void ServeMetrics::batch(const std::string& model, int64_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  batches_.try_emplace(model, kBatchBounds).first->second.observe(static_cast<double>(size));
  int64_t& largest = largest_[model];
  largest = std::max(largest, size);
}

uint64_t ServeMetrics::requests(int status) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = by_status_.find(status);
  return it == by_status_.end() ? 0 : it->second;
}

int64_t ServeMetrics::largest_batch(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = largest_.find(model);
  return it == largest_.end() ? 0 : it->second;
}

// Label values are run folder names: backslash, quote and newline escaped.
static std::string prom_label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string ServeMetrics::text(const std::vector<std::pair<std::string, size_t>>& queue_depths) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP graft_requests_total HTTP requests answered, by status code.\n";
  out += "# TYPE graft_requests_total counter\n";
  for (const auto& [code, n] : by_status_)
    out += "graft_requests_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP graft_request_duration_seconds Time from routing a request to its answer.\n";
  out += "# TYPE graft_request_duration_seconds histogram\n";
  latency_.write(out, "graft_request_duration_seconds", "");
  out += "# HELP graft_batch_size Inputs per forward pass, by model.\n";
  out += "# TYPE graft_batch_size histogram\n";
  for (const auto& [model, h] : batches_)
    h.write(out, "graft_batch_size", "model=\"" + prom_label_value(model) + "\"");
  out += "# HELP graft_queue_depth Requests waiting for their model, by model.\n";
  out += "# TYPE graft_queue_depth gauge\n";
  for (const auto& [model, depth] : queue_depths)
    out += "graft_queue_depth{model=\"" + prom_label_value(model) + "\"} " + std::to_string(depth) + "\n";
  return out;
}

}  // namespace graft::serve
