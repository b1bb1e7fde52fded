#pragma once
/// graft score: rank candidate source models on a labelled target set by
/// transferability scores computed from their (cached) features, before any
/// fine-tuning; optionally the similarity of a source and the target set
/// through each candidate backbone.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace graft {

/// One candidate source model: "BACKBONE=WEIGHTS" (a weight file, or none
/// for random initialisation), or a run directory written by graft
/// train/pretrain (its model.json names the backbone).
struct Candidate {
  std::string spec;      // as given
  std::string backbone;  // registry name
  std::string weights;   // weight file, run directory, or "none"
};

/// Parses one candidate; throws graft::UsageError naming it when the form,
/// the backbone or the path is wrong.
Candidate parse_candidate(const std::string& spec);

struct ScoreOptions {
  std::string data;                    // labelled target set
  std::vector<std::string> classes;    // keep only these
  int64_t per_class = 0;               // at most N per class (seeded), 0: all
  std::vector<std::string> candidates; // see Candidate
  std::string source_data;             // optional: domain similarity
  int64_t max_similarity_samples = 2000;  // per set, for CKA/MMD/PAD (seeded)
  int64_t permutations = 200;             // MMD permutation test
  uint64_t seed = 0;
  int64_t batch_size = 64;
  int threads = 0;
  int workers = 2;
  std::string device = "auto";
  std::string cache_dir;  // "" = default feature cache
  bool strict = false;
  /// Image candidates' features in fp32, bf16 (autocast) or int8
  /// (models/int8.h; calibrated on `calibration` images of `data`, seeded).
  std::string precision = "fp32";
  int64_t calibration = 256;
};

struct CandidateScore {
  std::string candidate, backbone, weights;
  int64_t feature_dim = 0;
  double logme = 0, h_score = 0;
  bool has_source_classifier = false;  // LEEP and NCE only then
  double leep = 0, nce = 0;
  bool has_similarity = false;
  double domain_cka = 0, mmd = 0, mmd_sigma = 0;
  double mmd_p = 1;                  // permutation test of the MMD
  double pad = 0, pad_error = 0.5;   // proxy A-distance, cross-validated (transferability.h)
  double seconds = 0;
};

/// --max-similarity-samples and --permutations in range (graft::UsageError).
void check_similarity_options(const ScoreOptions& o);
struct DomainShift;
/// Copies domain_shift()'s figures (select/transferability.h) into s.
void set_domain_shift(CandidateScore& s, const DomainShift& d);

/// Checks every input (data, classes, every candidate's weights) before any
/// feature is computed, then scores each candidate. Sorted by LogME,
/// best first.
std::vector<CandidateScore> score_candidates(const ScoreOptions& options);

nlohmann::ordered_json to_json(const std::vector<CandidateScore>& scores);
/// The ranking as a markdown table.
std::string score_table(const std::vector<CandidateScore>& scores);

}  // namespace graft
