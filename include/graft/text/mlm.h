#pragma once
/// Masked-language-model pretraining of a BERT source model on a plain-text
/// corpus (graft pretrain --task text): the corpus is tokenized with a
/// WordPiece vocabulary and packed into fixed-length sequences
/// ([CLS] tokens [SEP]); 15% of the tokens are chosen for prediction, of
/// which 80% become [MASK], 10% a random token and 10% stay (Devlin et al.);
/// AdamW with linear warmup and decay; checkpoints and --resume as graft
/// train has.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/text/wordpiece.h"

namespace graft {

/// Token ids of every line of every file, in order; each file ends with
/// [SEP] (a document break). A file that is not valid UTF-8 is read as
/// latin-1 (with one warning naming it), as older public-domain texts are.
std::vector<int64_t> tokenize_corpus(const std::vector<std::string>& files, const WordPiece& wp);

/// Cuts the stream into rows of exactly max_length ids: [CLS], max_length-2
/// ids, [SEP]; the tail that does not fill a row is dropped. [N, max_length].
torch::Tensor pack_sequences(const std::vector<int64_t>& stream, int64_t max_length,
                             int64_t cls_id, int64_t sep_id);

struct MaskedBatch {
  torch::Tensor inputs;  // ids with the chosen tokens replaced
  torch::Tensor labels;  // original id where chosen, -100 elsewhere
};

/// Chooses each token with probability `prob` (never [CLS], [SEP] or
/// [PAD]); a chosen token becomes [MASK] with probability 0.8, an id drawn
/// uniformly from the whole vocabulary with 0.1, and stays with 0.1 (as
/// Hugging Face's DataCollatorForLanguageModeling does).
MaskedBatch mask_tokens(const torch::Tensor& ids, const WordPiece& wp, double prob,
                        torch::Generator& gen);

struct MlmOptions {
  std::vector<std::string> corpus;  // text files
  std::string vocab;                // vocab.txt
  std::string size = "tiny";        // bert-tiny ... bert-base (see bert_size)
  std::string bert_config;          // a config.json instead of --size
  int64_t max_length = 128;
  int64_t batch_size = 32;
  int64_t epochs = 1;
  double time_budget_minutes = 0;   // stop (checkpointed, done) after this long; 0: none
  double lr = 1e-3;
  double weight_decay = 0.01;
  double warmup_fraction = 0.06;
  double mask_prob = 0.15;
  double clip_grad = 1.0;
  double val_fraction = 0.02;       // sequences held out for the MLM loss/accuracy
  uint64_t seed = 0;
  int threads = 0;
  std::string out;
  bool resume = false;
  bool overwrite = false;
  bool quiet = false;
  /// Not a setting: called after every optimiser step with the steps done;
  /// true stops there as a SIGINT would (checkpointed; --resume goes on).
  std::function<bool(int64_t)> should_stop;
};

struct MlmSummary {
  int64_t steps = 0;
  int64_t epochs_done = 0;
  double val_loss = 0, val_accuracy = 0;  // on the masked tokens of the held-out rows
  double seconds = 0;
  bool interrupted = false;
  bool budget_reached = false;
};

/// Pretrains and writes the run folder: model.safetensors (Hugging Face
/// BertForPreTraining names, bert.* and cls.predictions.*), bert_config.json,
/// vocab.txt, model.json, config.json (these options), metrics.csv (one row
/// per epoch) and checkpoint/.
MlmSummary pretrain_mlm(const MlmOptions& options);

}  // namespace graft
