#pragma once
/// One class's scores on a test set: what compute_metrics gives
/// (eval/metrics.h) and what test_metrics.json's "per_class" holds when a
/// report reads it back (report/run_data.h). Torch-free.

#include <cstdint>
#include <string>

namespace graft {

struct ClassMetrics {
  std::string name;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

}  // namespace graft
