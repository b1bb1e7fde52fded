#pragma once
/// Learning from unlabelled target data (issue 19): the losses that the image
/// and text tasks add to their steps when a run has --unlabeled data. Domain adaptation
/// (--adapt): DANN (Ganin et al. 2016: gradient reversal and a domain
/// classifier), DAN (Long et al. 2015: multi-kernel MMD on the features) and
/// CDAN+E (Long et al. 2018: a domain classifier on the multilinear map of
/// features and predictions, entropy-weighted). Self-training (--self-train):
/// pseudo-labels (Lee 2013) and FixMatch (Sohn et al. 2020). Every function
/// here works on tensors only, so the synthetic two-domain test and the image
/// task run the very same code.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "graft/train/options.h"

namespace graft {

/// Forward: the identity. Backward: -lambda x the incoming gradient.
torch::Tensor reverse_gradient(const torch::Tensor& x, double lambda);

/// Ganin's schedule of the reversal's strength: 2 / (1 + exp(-10 p)) - 1 for
/// the training progress p in [0, 1] (0 at the first step, 1 at the end).
double grl_lambda(double progress);

/// The kernel widths of DAN's Gaussian family, as multiples of the median
/// heuristic's squared width: 2^-2 .. 2^2.
const std::vector<double>& mmd_kernel_multipliers();

/// Median heuristic: the lower median of the squared distances ||z_i - z_j||^2,
/// i < j, over the pooled rows z of x [m, D] and y [n, D] (no gradient).
torch::Tensor median_squared_distance(const torch::Tensor& x, const torch::Tensor& y);

/// Unbiased multi-kernel MMD^2 between the rows of x [m, D] and y [n, D]
/// (m, n >= 2): k(a, b) = mean over s in `multipliers` of
/// exp(-||a - b||^2 / (2 s w)), w = median_squared_distance(x, y);
/// 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j)
/// - 2/(mn) sum_{i,j} k(x_i, y_j). Differentiable in x and y.
torch::Tensor mk_mmd(const torch::Tensor& x, const torch::Tensor& y,
                     const std::vector<double>& multipliers = mmd_kernel_multipliers());

/// Shannon entropy (nats) of each row's softmax, [B].
torch::Tensor softmax_entropy(const torch::Tensor& logits);

/// What --adapt needs to build its losses.
struct AdaptSpec {
  std::string method;       // dann | dan | cdan
  int64_t feature_dim = 0;  // the head's input
  int64_t classes = 0;
  int64_t hidden = 1024;    // the domain classifier's hidden width (dann, cdan)
  double weight = 1.0;      // trade-off: loss = classification + weight x adaptation
  uint64_t seed = 0;        // CDAN's random multilinear map, when one is used
};

/// CDAN's conditioning: the outer product f (x) softmax(g), flattened
/// [B, D*C], when D*C <= 4096; else the randomised multilinear map of the
/// paper, (f R_f) * (softmax(g) R_g) / sqrt(1024) with fixed Gaussian R_f
/// [D, 1024], R_g [C, 1024].
int64_t cdan_input_dim(int64_t feature_dim, int64_t classes);

/// One step's adaptation loss and the domain classifier's bookkeeping.
struct AdaptLoss {
  torch::Tensor loss;           // already multiplied by the trade-off weight
  int64_t domain_correct = 0;   // source rows called source + target rows called target
  int64_t domain_count = 0;     // 0 for DAN (no domain classifier)
};

/// The domain classifier (DANN, CDAN: Linear-ReLU-Linear-ReLU-Linear to one
/// logit, "source" = 1) and the losses. DAN has no parameters.
class DomainAdapterImpl : public torch::nn::Module {
 public:
  explicit DomainAdapterImpl(const AdaptSpec& spec);
  /// f_s [m, D], f_t [n, D]: the head's input on the source and target rows;
  /// g_s, g_t: their logits (CDAN); progress in [0, 1] sets the reversal's
  /// lambda (grl_lambda). DANN: binary cross-entropy of the domain classifier
  /// on the reversed features, the mean over the m + n rows. CDAN+E: the same
  /// on the reversed multilinear map of f and softmax(g) (softmax detached),
  /// each row weighted by 1 + exp(-H(softmax(g))), the weights normalised to
  /// mean 1 over the m + n rows. DAN: mk_mmd(f_s, f_t).
  AdaptLoss loss(const torch::Tensor& f_s, const torch::Tensor& f_t, const torch::Tensor& g_s,
                 const torch::Tensor& g_t, double progress);
  const AdaptSpec& spec() const { return spec_; }

 private:
  torch::Tensor conditioned(const torch::Tensor& f, const torch::Tensor& g);
  AdaptSpec spec_;
  torch::nn::Sequential domain_{nullptr};
  torch::Tensor rf_, rg_;  // CDAN's random multilinear map (buffers)
};
TORCH_MODULE(DomainAdapter);

/// Self-training's unlabelled loss: rows of `guess` (logits, no gradient
/// taken) whose softmax's largest probability is >= threshold give their
/// argmax as the label of the matching row of `learn`; the loss is the
/// cross-entropy over those rows divided by the number of ALL rows (as
/// FixMatch does). Pseudo-labels: guess = learn (the same forward, detached);
/// FixMatch: guess = the weak view, learn = the strong view.
struct SelfTrainLoss {
  torch::Tensor loss;
  int64_t kept = 0;  // rows over the threshold
};
SelfTrainLoss confident_label_loss(const torch::Tensor& guess, const torch::Tensor& learn, double threshold);

/// The unlabelled loss's ramp-up weight at `epochs` (fractional) into the run:
/// exp(-5 (1 - t)^2), t = min(1, epochs / rampup) (Laine & Aila 2017); 1
/// when rampup is 0.
double rampup_weight(double epochs, double rampup);

/// The unlabelled part of one training step, the same for the image and text
/// tasks. Rows [0, labelled) of `f` (the head's input) and `logits` are the
/// labelled inputs, the next `unlabelled` rows the unlabelled ones, and with
/// --self-train fixmatch the next `unlabelled` rows their strong views.
///  - --adapt (`adapter` defined): adapter->loss on the labelled against the
///    unlabelled rows at `progress` (0..1 of the run). With
///    `frozen_features` (a linear probe: only --adapt dan is allowed) the
///    rows aligned are the logits, the layer that trains. DAN with fewer than
///    two rows on a side adds nothing (the MMD needs two).
///  - --self-train: confident_label_loss(guess, learn, o.confidence) x
///    o.unlabeled_weight x rampup_weight(epochs, o.rampup_epochs).
/// `progress` and `epochs` are those of step `step` of epoch `epoch` (of
/// o.epochs with `steps_per_epoch` steps). `loss` is undefined when nothing
/// is added.
struct UnlabeledCounts {
  int64_t domain_correct = 0, domain_count = 0;  // the domain classifier's (DANN, CDAN)
  int64_t kept = 0, seen = 0;                     // pseudo-labels given, of unlabelled rows
  UnlabeledCounts& operator+=(const UnlabeledCounts& o);
};
struct UnlabeledTerm {
  torch::Tensor loss;
  UnlabeledCounts counts;
};
UnlabeledTerm unlabeled_term(const TrainOptions& o, DomainAdapter& adapter, bool frozen_features,
                             const torch::Tensor& f, const torch::Tensor& logits, int64_t labelled,
                             int64_t unlabelled, int64_t epoch, int64_t step, int64_t steps_per_epoch);

/// The checks of --unlabeled, --adapt and --self-train across options
/// (validate() calls it); each failure a graft::UsageError naming the option
/// and the value: another task than image or text; --adapt or --self-train
/// without --unlabeled, or --unlabeled without either; both at once;
/// --unlabeled missing, empty, or (images) not a folder; --self-train without
/// labelled --data; image --self-train fixmatch with --augment none (its
/// strong view is augmentation; text's is token dropout); --adapt with
/// --strategy linear (the features it aligns are frozen).
void check_unlabeled_options(const TrainOptions& o);

}  // namespace graft
