#pragma once
// One function per verb: each registers its subcommand on the app and sets
// `run` to the work to do once parsing succeeded.

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "graft/train/options.h"

namespace graft::cli {

using Action = std::function<int()>;

void add_train(CLI::App& app, Action& run, const std::vector<std::string>& args);
void add_pretrain(CLI::App& app, Action& run, const std::vector<std::string>& args);
void add_search(CLI::App& app, Action& run, const std::vector<std::string>& args);
void add_eval(CLI::App& app, Action& run);
void add_predict(CLI::App& app, Action& run);
void add_models(CLI::App& app, Action& run);
void add_weights(CLI::App& app, Action& run);
void add_score(CLI::App& app, Action& run);
void add_report(CLI::App& app, Action& run);
void add_compare(CLI::App& app, Action& run);
void add_face(CLI::App& app, Action& run);
/// graft train --task face (registered instead of the image/text train verb).
void add_face_train(CLI::App& app, Action& run, const std::vector<std::string>& args);
/// Binds graft train's data-parallel flags (--nproc ...) on `sub` and, once
/// parsed, runs the options that `options` fills as graft train does
/// (signals, worker processes, exit 130 when interrupted, the summary line).
void add_train_run(CLI::App& sub, Action& run, const std::vector<std::string>& args,
                   std::function<void(TrainOptions&)> options);

// The help of these three is their row's in train/option_table.cpp, which
// graft train binds itself (cli/train_options.h).
/// --threads, shared by every verb (0: all cores).
void add_threads(CLI::App& sub, int& threads);
/// --precision fp32|bf16 (checked where it is used).
void add_precision(CLI::App& sub, std::string& precision);
/// --max-pixels: the image pixel limit of this process (set_max_image_pixels).
void add_max_pixels(CLI::App& sub);

}  // namespace graft::cli
