#pragma once
// Pieces shared by the run, search and comparison pages (src/report only).

#include <string>
#include <vector>

#include "graft/report/run_data.h"

namespace graft::report {

/// The folder's own name ("runs/a/" -> "a").
std::string display_name(const std::string& dir);

/// A summary card: a small caption over a value; `title` is its tooltip.
std::string card(const std::string& key, const std::string& value, const std::string& title);

/// Loss, accuracy and learning-rate charts per epoch (train and validation),
/// with svg ids id_prefix + "loss", "accuracy", "lr".
std::string curves(const std::vector<EpochRow>& epochs, const std::string& id_prefix);

/// A relative path made safe for an href (percent-encoded, '/' kept).
std::string url_path(const std::string& path);

}  // namespace graft::report
