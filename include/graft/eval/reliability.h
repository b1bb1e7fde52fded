#pragma once
/// The reliability diagram of a run's validation set (Guo et al. 2017, fig.
/// 1): its inputs in equal-width bins of their top probability, each bin's
/// count, mean confidence and accuracy, before and after temperature
/// scaling. calibration.cpp computes the bins (the same binning as the
/// expected calibration error) and writes them into calibration.json's
/// "reliability"; the report reads them back here. Torch-free.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace graft {

/// One bin b of B: the inputs whose top probability p has b/B < p <= (b+1)/B
/// (bin 0 also holds p = 0).
struct ReliabilityBin {
  int64_t count = 0;
  double confidence = 0;  ///< mean p of the bin's inputs; 0 when empty
  double accuracy = 0;    ///< share of them predicted right; 0 when empty
};

/// calibration.json's reliability data with the fit it belongs to.
struct ReliabilityDiagram {
  std::string method;  ///< "temperature" or "none"
  double temperature = 1;
  bool converged = true;  ///< false: the fit kept T = 1 (calibration.h's TemperatureFit)
  double ece_before = 0, ece_after = 0;
  std::vector<ReliabilityBin> before;  ///< T = 1
  std::vector<ReliabilityBin> after;   ///< at `temperature`
};

/// calibration.json's "reliability" value: {"bins": B, "before": {"count":
/// [...], "confidence": [...], "accuracy": [...]}, "after": {...}}.
nlohmann::ordered_json reliability_json(const std::vector<ReliabilityBin>& before,
                                        const std::vector<ReliabilityBin>& after);

/// The diagram of a parsed calibration.json (`where` names the file in
/// errors); nullopt when it has no "reliability" (written before graft kept
/// the bins). graft::Error naming the file and key when it is malformed.
std::optional<ReliabilityDiagram> read_reliability(const nlohmann::json& calibration, const std::string& where);

}  // namespace graft
