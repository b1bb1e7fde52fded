#pragma once
/// graft train --task image: a backbone of the registry (models/registry.h)
/// with a new head (--head), trained by the loop (train/loop.h) as a linear
/// probe (on cached features unless --no-feature-cache), the last N stages
/// (partial:N) or the whole network (full), from --weights or from scratch.
/// The run folder: config.json, model.json, model.safetensors, metrics.csv,
/// checkpoint/, report.html, and with --test test_metrics.json and
/// test_predictions.csv.

#include "graft/train/loop.h"

namespace graft {

/// Trains one image run (o.resume: settings already restored).
TrainSummary train_image(const TrainOptions& o);

}  // namespace graft
