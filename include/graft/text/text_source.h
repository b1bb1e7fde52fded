#pragma once
/// The text model that `graft train --task text` starts from, built from its
/// options before any training step: the tokenizer, the network with its
/// source weights (BERT, use-lite) or its word vectors (textcnn), and the
/// strategy applied. One code path for the trainer (text_train.cpp's
/// TextTask derives from TextSourceBuilder) and for `graft score --task text`
/// (select/text_score.cpp), so that a score reads exactly the frozen features
/// a linear probe's head would read (TextModel::features).
///
/// Order of use: the constructor (every option checked and the source read,
/// before any data), set_training_texts (after the training set is read:
/// classes, pairs, and textcnn's word vocabulary from the training texts),
/// then build_network (seeded by --seed as graft train seeds it). TF-IDF is
/// described here (tokenizer) but fitted by the trainer on its encoded texts.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graft/text/text_data.h"
#include "graft/text/text_model.h"
#include "graft/train/options.h"
#include "graft/train/strategy.h"
#include "graft/weights/state_dict.h"

namespace graft {

class CentroidHeadImpl;

/// Reads the labelled text set `path` for `option` ("--data", "--val",
/// "--test") with the text options of `o` (format, columns, header, strict)
/// and the fixed `classes` (empty: the file's own); empty texts skipped are
/// logged as a counted warning. Throws graft::UsageError when the path does
/// not exist.
TextSet read_text_data(const std::string& path, const std::string& option, const TrainOptions& o,
                       const std::vector<std::string>& classes);

class TextSourceBuilder {
 public:
  /// Checks --backbone, --weights, --embeddings, --vocab, the BERT config,
  /// --strategy and --head against each other and reads the source (weights,
  /// vectors' dimension, tokenizer); graft::UsageError names the option.
  /// `world`: the number of workers (a centroid head needs one).
  explicit TextSourceBuilder(const TrainOptions& o, int64_t world = 1);
  virtual ~TextSourceBuilder() = default;

  /// After the training set is read: its classes and whether it holds pairs
  /// (refused by textcnn and use-lite, naming --data); textcnn builds its word
  /// vocabulary from the texts of `train`.
  void set_training_texts(const std::vector<std::string>& classes, bool pairs,
                          const std::vector<TextExample>& train);

  /// The network (not for tfidf), built as graft train builds it: the global
  /// RNG seeded with mix_seed(seed, 201), BERT initialised then its source
  /// loaded (classifier left out), use-lite loaded, textcnn's embedding from
  /// the vectors (OOV and rand seeded with mix_seed(seed, 211)); then the
  /// strategy's requires_grad. Returns the trainable stages, head first.
  std::vector<std::string> build_network();

  const TextModel& text_model() const { return m_; }

 protected:
  std::vector<std::string> build_bert();
  std::vector<std::string> build_use_lite();
  std::vector<std::string> build_textcnn();
  /// The strategy on a BERT-shaped encoder (BERT, and use-lite, whose
  /// parameters carry BERT's stage names).
  std::vector<std::string> apply_layer_strategy(torch::nn::Module& model);

  const TrainOptions so_;  // the options the source is built from
  int64_t source_world_ = 1;
  bool is_tfidf_ = false, is_use_ = false, is_cnn_ = false;
  int64_t num_layers_ = 0;
  EmbeddingInit emb_;                     // textcnn: how the embedding started
  CentroidHeadImpl* centroid_ = nullptr;  // the head, when --head centroid
  std::string wfile_, vocab_path_;
  std::shared_ptr<WordPiece> wp_;
  TextModel m_;
  Strategy strategy_;
  TensorList source_, use_source_;

 private:
  void describe_model();
  void describe_use_lite();
  void describe_textcnn();
  void load_source();
};

}  // namespace graft
