#pragma once
/// graft train --task text: a classifier on a BERT source model (linear
/// probe on cached pooled features, the last N encoder layers, or the whole
/// network), or the TF-IDF bag-of-words floor, on a labelled text set.
///
/// Batches: the epoch's seeded order, cut into runs of 50 optimiser batches
/// that are each sorted by length (--bucket, on by default), then the
/// batches are shuffled; each batch is padded to its longest text (dynamic
/// padding). An optimiser step covers batch_size x grad_accum texts,
/// processed as grad_accum micro-batches of batch_size whose losses are
/// weighted by their share of the step's texts, so that the gradient is the
/// same as one batch of batch_size x grad_accum.
///
/// Learning rates: the head at lr; the pooler and the last encoder layer at
/// lr x backbone_lr_mult; each earlier layer x layer_decay more, the
/// embeddings last (layer-wise decay). Biases and LayerNorm weights get no
/// weight decay.
///
/// The run folder is the image task's (config.json, metrics.csv,
/// checkpoint/, report.html, test_metrics.json, test_predictions.csv) plus
/// the text model's files (see text_model.h).

#include "graft/train/trainer.h"

namespace graft {

/// Called by train() for options.task == "text" (after --resume has
/// restored the stored options).
TrainSummary train_text(const TrainOptions& options);

/// The optimiser groups of a BertClassifier's trainable parameters (see
/// above): "head" at o.lr; "layer.K" (the pooler joins the last layer) at
/// o.lr x backbone_lr_mult x layer_decay^depth, depth 0 for the last layer;
/// "embeddings" at depth num_layers; each split in two, the second
/// ("NAME/no_decay") holding biases and norm weights without weight decay.
std::vector<ParamGroup> text_param_groups(torch::nn::Module& model, const TrainOptions& o,
                                          int64_t num_layers);

}  // namespace graft
