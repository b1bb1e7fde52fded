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
#include "graft/train/loop.h"

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

/// Pretrains and writes the run folder (options: the "mlm" row of the task
/// table, graft pretrain --task text; o.corpus, o.vocab, o.size or
/// o.bert_config, o.max_length, o.mask_prob, and the loop's settings):
/// model.safetensors (Hugging Face BertForPreTraining names, bert.* and
/// cls.predictions.*), bert_config.json, vocab.txt, model.json (task
/// "text-mlm"), config.json, metrics.csv (one row per epoch; the validation
/// columns are the masked-token loss and accuracy of the held-out
/// sequences), checkpoint/ and report.html. Every epoch's model is kept.
TrainSummary pretrain_mlm(const TrainOptions& o);

}  // namespace graft
