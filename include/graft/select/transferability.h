#pragma once
/// Transferability scores: how well a source model's features (or its
/// source classifier) suit a labelled target set, computed without any
/// fine-tuning; and similarity of two feature distributions. All inputs are
/// converted to float64; labels are int64 in 0..C-1.

#include <torch/torch.h>

namespace graft {

/// LogME (You et al., ICML 2021): the mean over classes of the log marginal
/// evidence per sample of a Bayesian linear regression from `features`
/// [N, D] to the one-hot label, with the prior and noise precisions (alpha,
/// beta) set by the paper's fixed-point iteration. Higher is better.
double logme(const torch::Tensor& features, const torch::Tensor& labels);

/// H-score (Bao et al., ICIP 2019): tr(pinv(cov(f)) cov(E[f | y])).
double h_score(const torch::Tensor& features, const torch::Tensor& labels);

/// LEEP (Nguyen et al., ICML 2020) from the source classifier's
/// probabilities [N, Cs] over source labels.
double leep(const torch::Tensor& source_probs, const torch::Tensor& labels);

/// NCE (Tran et al., ICCV 2019): -H(Y | Z) with Z the source classifier's
/// hard prediction [N] (int64).
double nce(const torch::Tensor& source_predictions, const torch::Tensor& labels);

/// Linear CKA (Kornblith et al., ICML 2019) of two representations of the
/// same N inputs, X [N, D1] and Y [N, D2] (rows paired).
double linear_cka(const torch::Tensor& x, const torch::Tensor& y);

/// Domain similarity through one backbone: X [N, D] and Y [M, D] are
/// features of two different sets (rows unpaired, columns the same
/// features). Linear CKA with the features as the paired axis: the cosine
/// between the two centred feature covariances, <Cx, Cy>_F / (|Cx|_F |Cy|_F),
/// in [0, 1]; 1 when the two sets spread the same way.
double domain_cka(const torch::Tensor& x, const torch::Tensor& y);

/// Squared MMD (biased V-statistic) with the Gaussian kernel
/// exp(-|a - b|^2 / (2 sigma^2)).
double mmd_rbf(const torch::Tensor& x, const torch::Tensor& y, double sigma);

/// The median heuristic for mmd_rbf: sigma = sqrt(median / 2) of the squared
/// distances between distinct rows of the pooled set [X; Y].
double median_sigma(const torch::Tensor& x, const torch::Tensor& y);

/// The MMD permutation test: the p-value of mmd_rbf(X, Y, sigma) under
/// the null hypothesis that X and Y come from one distribution. The pooled
/// rows [X; Y] are permuted `permutations` times (torch::randperm of N + M
/// with one CPU generator seeded with `seed`, called in turn, so PyTorch's
/// torch.randperm with torch.Generator().manual_seed(seed) gives the same
/// permutations); the first N permuted rows play X. p = (1 + the number of
/// permutations whose MMD is >= the observed one) / (1 + permutations).
double mmd_permutation_p(const torch::Tensor& x, const torch::Tensor& y, double sigma, int64_t permutations,
                         uint64_t seed);

/// Proxy A-distance (Ben-David et al. 2007; Ganin et al. 2016): PAD = 2 (1 - 2
/// eps), eps the CROSS-VALIDATED balanced error of a linear domain classifier
/// telling X (domain 0) from Y (domain 1); the in-sample error would make
/// PAD about 2 for any pair of sets in high dimension. Folds: row i of X and
/// row j of Y are in fold i % folds and j % folds. Per fold, the features
/// are standardised with the training rows' mean and standard deviation
/// (a constant feature: 1), then an L2-regularised logistic regression,
/// sum of log-losses + l2 / 2 |w|^2 (the bias not penalised), is fitted to
/// its optimum by Newton's method (float64; at most 50 steps, until the
/// largest step is below 1e-9). eps = (the held-out X rows classified as Y /
/// N + the held-out Y rows classified as X / M) / 2 (a row is Y when its
/// logit is > 0). PAD is near 0 for indistinguishable sets (it can dip below
/// 0 by chance) and 2 for separable ones.
struct ProxyADistance {
  double pad = 0;
  double error = 0;  ///< eps
};
ProxyADistance proxy_a_distance(const torch::Tensor& x, const torch::Tensor& y, int64_t folds = 5,
                                double l2 = 1.0);

/// What graft score --source-data reports for one candidate (image and text
/// alike): the source's and the target's feature rows, at most max_samples
/// of each (a seeded random subset, mix_seed(seed, 502) and (seed, 501),
/// rows kept in order), then domain_cka, median_sigma, mmd_rbf,
/// mmd_permutation_p (seeded mix_seed(seed, 503)) and proxy_a_distance of
/// (source, target).
struct DomainShift {
  double cka = 0, mmd = 0, sigma = 0, mmd_p = 1, pad = 0, pad_error = 0.5;
};
DomainShift domain_shift(const torch::Tensor& source, const torch::Tensor& target, int64_t max_samples,
                         int64_t permutations, uint64_t seed);

}  // namespace graft
