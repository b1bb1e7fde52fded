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

}  // namespace graft
