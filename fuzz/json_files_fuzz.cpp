/// libFuzzer target for every JSON file graft reads from a user or from a run
/// folder: training options (--config, a run's config.json), search spaces
/// (--space), model.json of image and text runs, Hugging Face config.json,
/// face_model.json and galleries, test_metrics.json and results.json (report,
/// compare), calibration.json's reliability bins (report). The input becomes
/// each of those files in turn; every reader must accept it or throw
/// graft::Error, never crash, overflow its stack or throw anything else.
/// Needs the whole library: replayed by the tests
/// (tests/weights/fuzz_replay_test.cpp); the sanitizer replay runs json_fuzz
/// (the JSON reader and the gallery alone).

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/eval/reliability.h"
#include "graft/face/face_train.h"
#include "graft/face/gallery.h"
#include "graft/models/saved_model.h"
#include "graft/report/report.h"
#include "graft/select/search.h"
#include "graft/text/bert.h"
#include "graft/text/text_model.h"
#include "graft/train/options.h"

#include "fuzz_target.h"

namespace {

using graft::fuzz::refused_or_ok;

// One folder per process, reused for every input.
const std::string& fuzz_dir() {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() /
                     ("graft-json-fuzz-" + std::to_string(::getpid())))
                        .string();
    std::filesystem::create_directories(d + "/run");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int GRAFT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string text = graft::fuzz::input_bytes(data, size);
  const std::string dir = fuzz_dir(), run = dir + "/run";
  refused_or_ok([&] {
    const nlohmann::json j = graft::parse_json(text, "fuzz");
    (void)graft::json_excerpt(j);
    refused_or_ok([&] {
      graft::TrainOptions o =
          graft::train_options_from_json(j.is_object() && j.contains("options") ? j["options"] : j, "fuzz");
      graft::validate(o);
    });
    refused_or_ok([&] {
      graft::SearchSpace s = graft::parse_search_space(j, "fuzz");
      (void)graft::random_points(s, 3, 1);
      (void)graft::grid_points(s, "fuzz");
    });
    refused_or_ok([&] { (void)graft::model_info_from_json(j, "fuzz"); });
    refused_or_ok([&] { (void)graft::bert_config_from_json(j, "fuzz"); });
    refused_or_ok([&] { (void)graft::read_reliability(j, "fuzz"); });
  });
  // The readers that take a path, with the input as the file one of them
  // reads (chosen by the input's size: one file written per input).
  // (Each file is removed, not truncated: ext4 flushes a truncated file's
  // old data to disk first, which made every input wait on the disk.)
  auto put = [&](const char* name) {
    const std::string path = run + "/" + name;
    std::filesystem::remove(path);
    std::ofstream(path, std::ios::binary) << text;
  };
  switch (size % 6) {
    case 0:
      put("gallery.json");
      refused_or_ok([&] { (void)graft::read_gallery(run + "/gallery.json"); });
      break;
    case 1:
      put("bert_config.json");
      refused_or_ok([&] { (void)graft::read_bert_config(run + "/bert_config.json"); });
      break;
    case 2:
      put("model.json");
      refused_or_ok([&] { (void)graft::saved_model_task(run); });
      refused_or_ok([&] { (void)graft::load_text_model(run); });
      break;
    case 3:
      put("face_model.json");
      refused_or_ok([&] { (void)graft::load_face_classifier(run); });
      refused_or_ok([&] { (void)graft::face_run_options(run); });
      std::filesystem::remove(run + "/face_model.json");
      break;
    case 4:
      put("test_metrics.json");
      refused_or_ok([&] { (void)graft::run_report_html(run); });
      break;
    default:
      put("config.json");
      refused_or_ok([&] { (void)graft::run_report_html(run); });
      break;
  }
  return 0;
}
