#include "graft/eval/reliability.h"

#include <cmath>

#include "graft/core/error.h"
#include "graft/core/json.h"

namespace graft {

namespace {

nlohmann::ordered_json reliability_columns(const std::vector<ReliabilityBin>& bins) {
  nlohmann::ordered_json count = nlohmann::ordered_json::array(), confidence = count, accuracy = count;
  for (const ReliabilityBin& b : bins) {
    count.push_back(b.count);
    confidence.push_back(b.confidence);
    accuracy.push_back(b.accuracy);
  }
  return {{"count", count}, {"confidence", confidence}, {"accuracy", accuracy}};
}

std::vector<ReliabilityBin> read_reliability_columns(const nlohmann::json& r, const std::string& key, size_t bins,
                                                     const std::string& where) {
  const std::string at = str_cat(where, " \"reliability\".\"", key, "\"");
  const nlohmann::json side = json_get<nlohmann::json>(r, key, where + " \"reliability\"");
  // Integers only: a float such as 1e300 converted to int64_t is undefined.
  const auto counts = json_get<std::vector<nlohmann::json>>(side, "count", at);
  std::vector<int64_t> count;
  for (const nlohmann::json& c : counts) {
    GRAFT_CHECK(c.is_number_integer(), at, ": count ", json_excerpt(c), " is not an integer");
    count.push_back(c.get<int64_t>());
  }
  const auto confidence = json_get<std::vector<double>>(side, "confidence", at);
  const auto accuracy = json_get<std::vector<double>>(side, "accuracy", at);
  GRAFT_CHECK(count.size() == bins && confidence.size() == bins && accuracy.size() == bins, at, ": ",
              count.size(), " counts, ", confidence.size(), " confidences and ", accuracy.size(),
              " accuracies (expected ", bins, " of each, one per bin)");
  std::vector<ReliabilityBin> out(bins);
  for (size_t b = 0; b < bins; ++b) {
    GRAFT_CHECK(count[b] >= 0 && confidence[b] >= 0 && confidence[b] <= 1 && accuracy[b] >= 0 && accuracy[b] <= 1,
                at, ": bin ", b, " has count ", count[b], ", confidence ", confidence[b], ", accuracy ", accuracy[b],
                " (expected a count >= 0 and values in [0, 1])");
    out[b] = {count[b], confidence[b], accuracy[b]};
  }
  return out;
}

}  // namespace

nlohmann::ordered_json reliability_json(const std::vector<ReliabilityBin>& before,
                                        const std::vector<ReliabilityBin>& after) {
  GRAFT_CHECK(before.size() == after.size(), "reliability: ", before.size(), " bins before and ", after.size(),
              " after calibration (expected the same number)");
  return {{"bins", before.size()}, {"before", reliability_columns(before)}, {"after", reliability_columns(after)}};
}

std::optional<ReliabilityDiagram> read_reliability(const nlohmann::json& calibration, const std::string& where) {
  if (!calibration.is_object() || !calibration.contains("reliability")) return std::nullopt;
  const nlohmann::json r = json_get<nlohmann::json>(calibration, "reliability", where);
  const nlohmann::json b = json_get<nlohmann::json>(r, "bins", where + " \"reliability\"");
  GRAFT_CHECK(b.is_number_integer() && b.get<int64_t>() >= 1 && b.get<int64_t>() <= 1000, where,
              " \"reliability\": \"bins\" is ", json_excerpt(b), " (expected an integer from 1 to 1000)");
  const int64_t bins = b.get<int64_t>();
  ReliabilityDiagram d;
  d.method = json_get<std::string>(calibration, "method", where);
  d.temperature = json_get<double>(calibration, "temperature", where);
  d.converged = json_get_or<bool>(calibration, "converged", true, where);
  d.ece_before = json_get<double>(calibration, "ece_before", where);
  d.ece_after = json_get<double>(calibration, "ece_after", where);
  d.before = read_reliability_columns(r, "before", static_cast<size_t>(bins), where);
  d.after = read_reliability_columns(r, "after", static_cast<size_t>(bins), where);
  return d;
}

}  // namespace graft
