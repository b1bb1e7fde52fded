/// libFuzzer target for the JSON a user hands graft: training options
/// (--config, a run's config.json) and search spaces (--space). The input is
/// JSON; it must either be accepted or be rejected with graft::Error (a
/// UsageError), never crash or throw anything else.
/// Built with -DGRAFT_FUZZ=ON (scripts/fuzz.sh); the tests replay it over
/// mutated seeds (tests/weights/fuzz_replay_test.cpp).

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/select/search.h"
#include "graft/train/options.h"

#include "fuzz_target.h"

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // graft reports the parser's error itself
  graft::fuzz::refused_or_ok([&] {
    graft::TrainOptions o = graft::train_options_from_json(j.contains("options") ? j["options"] : j, "fuzz");
    graft::validate(o);
  });
  graft::fuzz::refused_or_ok([&] {
    graft::SearchSpace s = graft::parse_search_space(j, "fuzz");
    (void)graft::random_points(s, 3, 1);
    (void)graft::grid_points(s, "fuzz");
  });
  return 0;
}
