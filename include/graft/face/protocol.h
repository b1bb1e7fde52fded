#pragma once
/// Face evaluation protocols on precomputed embeddings (so that tests can
/// check them against an independent computation):
///  - verification: every genuine pair plus as many seeded impostor pairs,
///    10-fold cross-validated accuracy with the threshold chosen on the other
///    nine folds (the LFW protocol), ROC AUC, TAR at a FAR;
///  - identification: rank-1 accuracy with k enrolment images per identity
///    (their mean embedding) and the rest as probes, over seeded trials.
/// Distances are Euclidean between L2-normalised embeddings; "same" is
/// distance < threshold.

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace graft {

struct FacePair {
  int64_t a = 0, b = 0;
  bool same = false;
  int fold = 0;
  double distance = 0;
};

struct VerificationResult {
  std::vector<FacePair> pairs;
  int64_t genuine = 0, impostor = 0;
  std::vector<double> fold_accuracy, fold_threshold;
  double accuracy = 0, accuracy_std = 0;  // mean and population std over folds
  double auc = 0;
  double far_target = 1e-3, tar_at_far = 0, far_threshold = 0;
  double best_threshold = 0;  // threshold of best accuracy over all pairs
};

/// Makes the pairs of `labels` (one per embedding row): all genuine pairs
/// (i < j), then `genuine` impostor pairs drawn without replacement (seeded)
/// from the pairs of different labels (all of them when fewer), and assigns
/// folds by a seeded shuffle (pair p of the shuffled order goes to fold p %
/// folds). Throws graft::Error when there is no genuine or no impostor pair.
std::vector<FacePair> make_face_pairs(const std::vector<int64_t>& labels, int folds, uint64_t seed);

/// The threshold that maximises accuracy on `pairs` (distance < t is "same"):
/// the midpoint between consecutive sorted distances (or just beyond either
/// end) with the most right; the smallest such on ties.
double best_face_threshold(const std::vector<FacePair>& pairs);

/// Verification metrics of `embeddings` [N, D] with `labels`.
VerificationResult evaluate_verification(const torch::Tensor& embeddings, const std::vector<int64_t>& labels,
                                         int folds = 10, double far = 1e-3, uint64_t seed = 0);

/// The split of one identification trial: per label (in label order), which
/// rows enrol (k of them, a seeded choice) and which are probes.
struct IdentificationSplit {
  std::vector<int64_t> enrol, probe;
};
IdentificationSplit split_for_identification(const std::vector<int64_t>& labels, int k, uint64_t seed);

struct IdentificationResult {
  int k = 0;
  int trials = 0;
  int64_t identities = 0;       // identities with more than k images (used)
  int64_t probes = 0;           // per trial
  std::vector<double> trial_rank1;
  double rank1 = 0, rank1_std = 0;
};

/// Rank-1 identification: per trial, the mean of each identity's k enrolment
/// embeddings (re-normalised) is its template; each probe gets the nearest
/// template. Identities with k or fewer images are left out.
IdentificationResult evaluate_identification(const torch::Tensor& embeddings, const std::vector<int64_t>& labels,
                                             int k, int trials = 10, uint64_t seed = 0);

}  // namespace graft
