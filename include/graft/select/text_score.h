#pragma once
/// graft score on a text target (`--task text`, issue 18): text sources
/// ranked by LogME and H-score on the frozen features that
/// `graft train --task text --strategy linear` would give its head, computed
/// on the target's training texts, with no training.
///
/// Candidates (--backbones, comma-separated):
///  - BACKBONE=WEIGHTS, BACKBONE a text backbone (text_backbone_names()) but
///    tfidf, WEIGHTS what graft train's --weights takes for it:
///      bert=DIR, bert-tiny=FILE|DIR|none, ...: BERT's pooled output; a
///        pretraining run, a Hugging Face folder, a text run (its encoder,
///        the classifier left out) or none (random initialisation, seeded
///        by --seed as graft train seeds it); the WordPiece vocabulary from
///        --vocab or beside the weights;
///      use-lite=DIR: the 512-d sentence embedding (scripts/use_lite.sh's folder);
///      textcnn=VECTORS|none: the 300-d max-pooled convolution features over
///        an embedding initialised from the vectors (a .safetensors from
///        graft weights convert; OOV and "none" uniform in [-0.25, 0.25]),
///        the word vocabulary built from the target's texts, the filters
///        seeded (graft train's initial TextCNN);
///  - a text run folder (model.json task "text"): the features its head
///    reads, and its classifier over its own classes gives LEEP and NCE.
///    A TF-IDF run has no features to score (refused).
/// The features come from TextSourceBuilder (text/text_source.h) and
/// TextModel::features, the code graft train runs. They are computed on the
/// CPU and not cached (texts are cheap next to images).
///
/// The target is read as graft train reads --data (text_read_options: the
/// same format, column, header and strict options, the same counted warnings
/// for empty and truncated texts); --classes keeps some classes, --per-class
/// N at most N texts per class (seeded, file order kept).
///
/// --source-data (issue 19): texts of the source's domain, read without
/// labels with the target's reading options (one text per line, or the text
/// column of a CSV/TSV/JSONL file); each candidate's features of them and of
/// the target give domain_shift() (select/transferability.h: CKA, MMD and its
/// permutation test, PAD), as for images. A textcnn=VECTORS candidate's word
/// vocabulary is the target's, so source words outside it read as <unk>.

#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/select/score.h"
#include "graft/train/options.h"

namespace graft {

/// True for "BACKBONE=..." with a text backbone, or a folder whose
/// model.json says task "text": what graft score refuses without --task text.
bool is_text_candidate(const std::string& spec);

/// The features of one candidate as scored: rows in target order.
struct TextCandidateFeatures {
  std::string candidate;
  torch::Tensor values;        // [N, D] float32
  torch::Tensor labels;        // [N] int64, target classes
  torch::Tensor source_probs;  // [N, Cs] float64 for a run with a classifier; undefined otherwise
};

/// Scores every candidate on the text target o.data read with `text`'s
/// reading options (text_format, text/text_b/label columns, header, strict;
/// vocab, cased and max_length for BERT); o.classes, o.per_class, o.seed,
/// o.batch_size, o.threads apply. Every candidate is checked (and its source
/// read) before the first feature is computed; a bad one is a
/// graft::UsageError naming --backbones and the candidate. Sorted by LogME,
/// best first; `features`, when given, receives each candidate's features in
/// the same order.
std::vector<CandidateScore> score_text_candidates(const ScoreOptions& o, const TrainOptions& text,
                                                  std::vector<TextCandidateFeatures>* features = nullptr);

}  // namespace graft
