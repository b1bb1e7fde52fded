#pragma once
// One function per verb: each registers its subcommand on the app and sets
// `run` to the work to do once parsing succeeded.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "graft/eval/calibration.h"
#include "graft/train/options.h"

namespace graft::cli {

using Action = std::function<int()>;

/// A verb (or a verb's verb) of `parent` whose flags fill `*o`, and which
/// runs `body(*o)` once the command line is parsed; returns it, for its flags.
template <typename O, typename F>
CLI::App* add_command(CLI::App& parent, Action& run, const std::string& name, const std::string& help,
                      std::shared_ptr<O> o, F body) {
  CLI::App* sub = parent.add_subcommand(name, help);
  sub->callback([&run, o, body] { run = [o, body] { return body(*o); }; });
  return sub;
}

void add_train(CLI::App& app, Action& run, const std::vector<std::string>& args);
void add_pretrain(CLI::App& app, Action& run, const std::vector<std::string>& args);
void add_search(CLI::App& app, Action& run, const std::vector<std::string>& args);
void add_eval(CLI::App& app, Action& run);
void add_predict(CLI::App& app, Action& run);
void add_enroll(CLI::App& app, Action& run);
void add_embed(CLI::App& app, Action& run);
void add_models(CLI::App& app, Action& run);
void add_weights(CLI::App& app, Action& run);
void add_score(CLI::App& app, Action& run);
void add_report(CLI::App& app, Action& run);
void add_compare(CLI::App& app, Action& run);
void add_face(CLI::App& app, Action& run);
void add_export(CLI::App& app, Action& run);  // [onnx export] src/cli/export.cpp
void add_serve(CLI::App& app, Action& run);  // graft serve (src/cli/serve.cpp)

// The help of these three is their row's in train/option_table.cpp, which
// graft train binds itself (cli/train_options.h).
/// --threads, shared by every verb (0: all cores).
void add_threads(CLI::App& sub, int& threads);
/// --reject-below and --reject-at-frr of eval and predict (image and text
/// runs; checked where they are used).
void add_reject(CLI::App& sub, RejectOptions& r);
/// --tta (image runs; parse_tta checks the value).
void add_tta(CLI::App& sub, std::string& tta);
/// --precision fp32|bf16 (checked where it is used).
void add_precision(CLI::App& sub, std::string& precision);
/// --calibration N and --calibration-data PATH, for --precision int8.
void add_int8_calibration(CLI::App& sub, int64_t& calibration, std::string& calibration_data);
/// --max-pixels: the image pixel limit of this process (set_max_image_pixels).
void add_max_pixels(CLI::App& sub);

}  // namespace graft::cli
