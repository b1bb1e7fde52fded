#pragma once
/// ONNX export of a trained run (graft export RUN --format onnx): the graph
/// is built from graft's own modules with Debian's libonnx (the ONNX protobuf
/// and its checker, kept inside src/export/), opset kOnnxOpset, a dynamic
/// batch axis, BatchNorm folded into the convolution before it, and the
/// run's classes and preprocessing in the model's metadata_props.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graft/face/face_train.h"
#include "graft/face/nets.h"
#include "graft/models/backbone.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"

namespace graft {

/// The ONNX operator set the exports use (onnxruntime 1.20 runs 7 to 21;
/// Debian's onnx 1.12 checks up to 17).
inline constexpr int kOnnxOpset = 17;

/// An image model's graph: input "input" [batch, channels, size, size]
/// (float32, normalised as `info.input` says), outputs "logits" [batch,
/// classes] and "probabilities" = softmax(logits / temperature).
/// `metadata` is added to metadata_props after graft's own entries. Returns
/// the serialised ModelProto, checked by onnx::checker::check_model. Throws
/// graft::Error naming a layer that has no ONNX form here.
std::string image_model_onnx(BackboneImpl& model, const ModelInfo& info, double temperature,
                             const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// An image run folder (load_model, calibration.json's temperature) as ONNX.
std::string image_run_onnx(const std::string& run);

/// A BERT classifier's graph: int64 inputs "input_ids", "token_type_ids",
/// "attention_mask" [batch, sequence]; outputs as image_model_onnx.
std::string bert_classifier_onnx(BertClassifierImpl& model, const TextModelInfo& info, double temperature,
                                 const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// A TF-IDF classifier's graph: input "tfidf" [batch, features] (float32,
/// the TF-IDF vector graft computes from the text); outputs as
/// image_model_onnx. The tokenizer and the TF-IDF table stay outside the
/// graph (in its metadata: "vocab", "tfidf_table").
std::string tfidf_classifier_onnx(TfidfClassifierImpl& model, const TextModelInfo& info, double temperature,
                                  const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// A text run folder (load_text_model) as ONNX, its vocabulary, BERT config
/// or TF-IDF table in the metadata.
std::string text_run_onnx(const std::string& run);

/// face-api's recognition net as graft runs it: input "input" [batch, 3,
/// 150, 150] (an aligned chip, RGB 0..255), output "embeddings" [batch, 128]
/// (not normalised); with `classifier` also "scores" [batch, classes] of the
/// L2-normalised embeddings (FaceClassifier::scores).
std::string face_embedder_onnx(FaceEmbedderImpl& net, const FaceClassifier* classifier,
                               const std::vector<std::pair<std::string, std::string>>& metadata = {});

/// A face run folder (its embedder, fine-tuned or face-api's, and its head)
/// as ONNX.
std::string face_run_onnx(const std::string& run);

/// Writes `model_bytes` to `out` atomically. An existing `out` is refused
/// (graft::UsageError naming it and --overwrite) unless `overwrite`.
void write_onnx_file(const std::string& model_bytes, const std::string& out, bool overwrite);

/// The metadata_props of an ONNX file, after onnx::checker::check_model
/// passed on it (graft::Error naming the file otherwise).
std::map<std::string, std::string> read_onnx_metadata(const std::string& path);

/// The operator types of an ONNX file's graph, in node order.
std::vector<std::string> onnx_node_types(const std::string& path);

}  // namespace graft
