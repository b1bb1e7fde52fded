#pragma once
/// graft embed: the features a run's head reads (image runs: the pooled
/// backbone features; BERT text runs: the pooled output; face runs: the
/// L2-normalised face embedding), or a registry backbone's pooled features
/// with source weights, for many inputs, written as safetensors, .npy or CSV
/// with the list of inputs.

#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/eval/infer.h"

namespace graft {

/// Rows of features and the input each row is of.
struct Embeddings {
  std::vector<std::string> inputs;  ///< a file, or FILE:LINE for a text
  torch::Tensor rows;               ///< [inputs.size(), D] float32
  int64_t skipped = 0;              ///< inputs left out (unreadable; no face)
  std::string source;               ///< the run, or BACKBONE with WEIGHTS
};

/// The image files of `inputs`: files as given, folders searched
/// recursively (sorted), as one unlabelled set. Throws graft::UsageError
/// naming an input that does not exist, graft::Error when none holds an image.
ImageSet embedding_image_set(const std::vector<std::string>& inputs);

/// Pooled features of `inputs` (embedding_image_set) by `model` with the
/// evaluation transform of `spec`, through the feature cache (`model_key`:
/// the backbone and its weights, as training keys them, so a linear probe's
/// cached features are found again; `cache_dir` "" keeps them in memory).
/// Unreadable images are skipped with a warning.
Embeddings embed_image_files(BackboneImpl& model, const std::string& model_key, const InputSpec& spec,
                             const std::vector<std::string>& inputs, const InferOptions& options,
                             const std::string& cache_dir);

/// graft embed --backbone NAME --weights FILE ("none": random weights).
Embeddings embed_with_backbone(const std::string& backbone, const std::string& weights,
                               const std::vector<std::string>& inputs, const InferOptions& options,
                               const std::string& cache_dir);

/// graft embed RUN for an image run: its backbone's pooled features, keyed
/// in the cache by the run's weights.
Embeddings embed_image_run(const std::string& run, const std::vector<std::string>& inputs,
                           const InferOptions& options, const std::string& cache_dir);

/// The output format for `out`: `format` when given (safetensors, npy or
/// csv), else from out's extension. UsageError naming --format otherwise.
std::string embedding_format(const std::string& out, const std::string& format);

/// Writes `e` to `out` atomically, refusing an existing file unless
/// `overwrite`:
///  safetensors — tensor "embeddings" [N, D] float32; metadata "inputs"
///                (a JSON array) and "source";
///  npy         — the [N, D] float32 array (NumPy format 1.0), and the inputs
///                one per line in OUT.inputs.txt;
///  csv         — a header "input,f0,...,f{D-1}", then one row per input.
void write_embeddings(const Embeddings& e, const std::string& out, const std::string& format, bool overwrite);

}  // namespace graft
