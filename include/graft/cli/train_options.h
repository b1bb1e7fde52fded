#pragma once
/// The flags of graft train, search and pretrain, made from the option table
/// (train/option_table.h).

#include <functional>

#include <CLI/CLI.hpp>

#include "graft/train/option_table.h"

namespace graft::cli {

/// Adds --config (read before parsing, see train.cpp) and one flag per row of
/// train_option_table() that `keep` accepts (every row without it), each
/// writing its field of `o`: a bool row is a flag, a list is comma-separated,
/// a row's group is a CLI11 group. Values are checked later by validate().
void bind_train_options(CLI::App& sub, TrainOptions& o,
                        const std::function<bool(const OptionRow&)>& keep = {});
/// The same flags without --config: other verbs that take some of the
/// training options (graft face's detection flags) bind their rows.
void bind_option_rows(CLI::App& sub, TrainOptions& o, const std::function<bool(const OptionRow&)>& keep);

}  // namespace graft::cli
