// Domain adaptation and self-training losses (train/adapt.h).

#include "graft/train/adapt.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "graft/core/error.h"

namespace graft {

namespace {

constexpr int64_t kCdanFullLimit = 4096;  // CDAN: the outer product up to this width
constexpr int64_t kCdanRandomDim = 1024;  // the randomised map's width

class GradReverse : public torch::autograd::Function<GradReverse> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double lambda) {
    ctx->saved_data["lambda"] = lambda;
    return x.view_as(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const double lambda = ctx->saved_data["lambda"].toDouble();
    return {grads[0].neg().mul(lambda), torch::Tensor()};
  }
};

// Squared Euclidean distances between the rows of a [m, D] and b [n, D].
torch::Tensor adapt_squared_distances(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor d = a.pow(2).sum(1, true) + b.pow(2).sum(1).unsqueeze(0) - 2 * a.matmul(b.t());
  return d.clamp_min(0);
}

}  // namespace

torch::Tensor reverse_gradient(const torch::Tensor& x, double lambda) { return GradReverse::apply(x, lambda); }

double grl_lambda(double progress) {
  const double p = std::min(1.0, std::max(0.0, progress));
  return 2.0 / (1.0 + std::exp(-10.0 * p)) - 1.0;
}

const std::vector<double>& mmd_kernel_multipliers() {
  static const std::vector<double> m = {0.25, 0.5, 1.0, 2.0, 4.0};
  return m;
}

torch::Tensor median_squared_distance(const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  torch::Tensor z = torch::cat({x, y}).to(torch::kFloat64);
  const int64_t n = z.size(0);
  torch::Tensor d = adapt_squared_distances(z, z);
  torch::Tensor upper = torch::triu_indices(n, n, 1, torch::TensorOptions().dtype(torch::kInt64));
  torch::Tensor v = d.index({upper[0], upper[1]});
  torch::Tensor sorted = std::get<0>(v.sort());
  return sorted[(sorted.size(0) - 1) / 2].to(x.dtype());
}

torch::Tensor mk_mmd(const torch::Tensor& x, const torch::Tensor& y, const std::vector<double>& multipliers) {
  const int64_t m = x.size(0), n = y.size(0);
  GRAFT_CHECK(m >= 2 && n >= 2, "MMD needs at least 2 rows on each side (got ", m, " and ", n, ")");
  GRAFT_CHECK(x.size(1) == y.size(1), "MMD: the two samples have ", x.size(1), " and ", y.size(1),
              " columns (expected the same)");
  GRAFT_CHECK(!multipliers.empty(), "MMD: no kernel width");
  // A zero median (all rows equal) would divide by zero: any width fits then.
  const torch::Tensor w = median_squared_distance(x, y).clamp_min(1e-12);
  auto kernel = [&](const torch::Tensor& a, const torch::Tensor& b) {
    torch::Tensor d = adapt_squared_distances(a, b);
    torch::Tensor k = torch::zeros_like(d);
    for (double s : multipliers) k = k + torch::exp(-d / (2.0 * s * w));
    return k / static_cast<double>(multipliers.size());
  };
  auto off_diagonal_mean = [](const torch::Tensor& k) {
    const int64_t r = k.size(0);
    return (k.sum() - k.diagonal().sum()) / static_cast<double>(r * (r - 1));
  };
  return off_diagonal_mean(kernel(x, x)) + off_diagonal_mean(kernel(y, y)) - 2.0 * kernel(x, y).mean();
}

torch::Tensor softmax_entropy(const torch::Tensor& logits) {
  torch::Tensor logp = torch::log_softmax(logits, 1);
  return -(logp.exp() * logp).sum(1);
}

int64_t cdan_input_dim(int64_t feature_dim, int64_t classes) {
  return feature_dim * classes <= kCdanFullLimit ? feature_dim * classes : kCdanRandomDim;
}

DomainAdapterImpl::DomainAdapterImpl(const AdaptSpec& spec) : spec_(spec) {
  GRAFT_CHECK_USAGE(spec.method == "dann" || spec.method == "dan" || spec.method == "cdan", "--adapt: '",
                    spec.method, "' is not valid (expected one of dann, dan, cdan)");
  GRAFT_CHECK(spec.feature_dim > 0 && spec.classes > 0, "--adapt: feature width ", spec.feature_dim,
              " and classes ", spec.classes, " (expected positive)");
  if (spec.method == "dan") return;
  int64_t in = spec.feature_dim;
  if (spec.method == "cdan") {
    in = cdan_input_dim(spec.feature_dim, spec.classes);
    if (in == kCdanRandomDim && spec.feature_dim * spec.classes > kCdanFullLimit) {
      torch::Generator gen = at::detail::createCPUGenerator(spec.seed ^ 0xcda11ULL);
      rf_ = register_buffer("rf", at::randn({spec.feature_dim, kCdanRandomDim}, gen));
      rg_ = register_buffer("rg", at::randn({spec.classes, kCdanRandomDim}, gen));
    }
  }
  domain_ = register_module(
      "domain", torch::nn::Sequential(torch::nn::Linear(in, spec.hidden), torch::nn::ReLU(),
                                      torch::nn::Linear(spec.hidden, spec.hidden), torch::nn::ReLU(),
                                      torch::nn::Linear(spec.hidden, 1)));
}

torch::Tensor DomainAdapterImpl::conditioned(const torch::Tensor& f, const torch::Tensor& g) {
  torch::Tensor p = torch::softmax(g, 1).detach();
  if (rf_.defined())
    return f.matmul(rf_.to(f.device())) * p.matmul(rg_.to(f.device())) / std::sqrt(double(kCdanRandomDim));
  return torch::bmm(p.unsqueeze(2), f.unsqueeze(1)).flatten(1);  // [B, C*D]: row c*D + d = p_c f_d
}

AdaptLoss DomainAdapterImpl::loss(const torch::Tensor& f_s, const torch::Tensor& f_t, const torch::Tensor& g_s,
                                  const torch::Tensor& g_t, double progress) {
  AdaptLoss out;
  if (spec_.method == "dan") {
    out.loss = spec_.weight * mk_mmd(f_s, f_t);
    return out;
  }
  const int64_t m = f_s.size(0), n = f_t.size(0);
  torch::Tensor f = torch::cat({f_s, f_t});
  torch::Tensor h = spec_.method == "cdan" ? conditioned(f, torch::cat({g_s, g_t})) : f;
  torch::Tensor d = domain_->forward(reverse_gradient(h, grl_lambda(progress))).squeeze(1);
  torch::Tensor target = torch::cat({torch::ones({m}, d.options()), torch::zeros({n}, d.options())});
  torch::Tensor weight;
  if (spec_.method == "cdan") {
    torch::NoGradGuard no_grad;
    weight = 1.0 + torch::exp(-softmax_entropy(torch::cat({g_s, g_t}).detach()));
    weight = weight / weight.sum() * static_cast<double>(m + n);
  }
  auto opts = torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions();
  if (weight.defined()) opts.weight(weight);
  out.loss = spec_.weight * torch::nn::functional::binary_cross_entropy_with_logits(d, target, opts);
  {
    torch::NoGradGuard no_grad;
    out.domain_correct = d.gt(0).eq(target.gt(0.5)).sum().item<int64_t>();
  }
  out.domain_count = m + n;
  return out;
}

SelfTrainLoss confident_label_loss(const torch::Tensor& guess, const torch::Tensor& learn, double threshold) {
  SelfTrainLoss out;
  torch::Tensor mask, labels;
  {
    torch::NoGradGuard no_grad;
    auto [conf, pred] = torch::softmax(guess.detach().to(torch::kFloat32), 1).max(1);
    mask = conf.ge(threshold).to(torch::kFloat32);
    labels = pred;
    out.kept = mask.sum().item<int64_t>();
  }
  torch::Tensor ce = torch::nn::functional::cross_entropy(
      learn, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  out.loss = (ce * mask).sum() / static_cast<double>(std::max<int64_t>(1, learn.size(0)));
  return out;
}

double rampup_weight(double epochs, double rampup) {
  if (rampup <= 0) return 1.0;
  const double t = std::min(1.0, std::max(0.0, epochs / rampup));
  return std::exp(-5.0 * (1.0 - t) * (1.0 - t));
}

UnlabeledCounts& UnlabeledCounts::operator+=(const UnlabeledCounts& o) {
  domain_correct += o.domain_correct;
  domain_count += o.domain_count;
  kept += o.kept;
  seen += o.seen;
  return *this;
}

UnlabeledTerm unlabeled_term(const TrainOptions& o, DomainAdapter& adapter, bool frozen_features,
                             const torch::Tensor& f, const torch::Tensor& logits, int64_t labelled,
                             int64_t unlabelled, int64_t epoch, int64_t step, int64_t steps_per_epoch) {
  const double steps = static_cast<double>(steps_per_epoch);
  const double progress =
      (static_cast<double>(epoch) * steps + static_cast<double>(step)) / std::max(1.0, static_cast<double>(o.epochs) * steps);
  const double epochs = static_cast<double>(epoch) + static_cast<double>(step) / steps;
  UnlabeledTerm out;
  const int64_t m = labelled, n = unlabelled;
  const torch::Tensor lab_logits = logits.narrow(0, 0, m), unl_logits = logits.narrow(0, m, n);
  if (adapter) {
    if (o.adapt == "dan" && (m < 2 || n < 2)) return out;  // MMD needs two rows a side
    // A linear probe's features are frozen: DAN aligns the head's output.
    const torch::Tensor& aligned = frozen_features ? logits : f;
    AdaptLoss a = adapter->loss(aligned.narrow(0, 0, m), aligned.narrow(0, m, n), lab_logits, unl_logits, progress);
    out.loss = a.loss;
    out.counts.domain_correct = a.domain_correct;
    out.counts.domain_count = a.domain_count;
    return out;
  }
  const torch::Tensor learn = o.self_train == "fixmatch" ? logits.narrow(0, m + n, n) : unl_logits;
  SelfTrainLoss st = confident_label_loss(unl_logits, learn, o.confidence);
  out.loss = o.unlabeled_weight * rampup_weight(epochs, o.rampup_epochs) * st.loss;
  out.counts.kept = st.kept;
  out.counts.seen = n;
  return out;
}

void check_unlabeled_options(const TrainOptions& o) {
  const bool adapt = o.adapt != "none", self = o.self_train != "none";
  const bool text = o.task == "text";
  if (o.task != "image" && !text) {
    GRAFT_CHECK_USAGE(!adapt, "--adapt ", o.adapt, " with --task ", o.task,
                      ": domain adaptation is trained by the image and text tasks only (expected --adapt none)");
    GRAFT_CHECK_USAGE(!self, "--self-train ", o.self_train, " with --task ", o.task,
                      ": self-training is trained by the image and text tasks only (expected --self-train none)");
    GRAFT_CHECK_USAGE(o.unlabeled.empty(), "--unlabeled '", o.unlabeled, "' with --task ", o.task,
                      ": unlabelled data is read by the image and text tasks only");
    return;
  }
  const char* what = text ? "texts" : "images";
  const char* expected = text ? "a file of texts, one per line or a CSV/TSV/JSONL text column, or a folder of such files"
                              : "a folder of images, nested or flat";
  GRAFT_CHECK_USAGE(!(adapt && self), "--adapt ", o.adapt, " and --self-train ", o.self_train,
                    ": choose one (expected one of them none)");
  if (adapt || self) {
    const std::string flag = adapt ? "--adapt " + o.adapt : "--self-train " + o.self_train;
    GRAFT_CHECK_USAGE(!o.unlabeled.empty(), flag, " needs target ", what, " without labels (expected --unlabeled ",
                      text ? "FILE" : "FOLDER", ")");
  } else {
    GRAFT_CHECK_USAGE(o.unlabeled.empty(), "--unlabeled '", o.unlabeled,
                      "' is read only with --adapt or --self-train (expected one of them, or no --unlabeled)");
    return;
  }
  GRAFT_CHECK_USAGE(o.head != "centroid", "--head centroid with ", adapt ? "--adapt " + o.adapt : "--self-train " + o.self_train,
                    ": a centroid head is fitted, not trained, so it learns nothing from --unlabeled (expected --head "
                    "linear or mlp:HIDDEN)");
  namespace fs = std::filesystem;
  GRAFT_CHECK_USAGE(fs::exists(o.unlabeled), "--unlabeled: '", o.unlabeled, "' does not exist (expected ", expected,
                    ")");
  if (!text) {
    GRAFT_CHECK_USAGE(fs::is_directory(o.unlabeled), "--unlabeled: '", o.unlabeled, "' is not a folder (expected ",
                      expected, ")");
  }
  if (fs::is_directory(o.unlabeled))
    GRAFT_CHECK_USAGE(fs::directory_iterator(o.unlabeled) != fs::directory_iterator(), "--unlabeled: '",
                      o.unlabeled, "' is an empty folder (expected ", text ? "files of texts" : "images, nested or flat",
                      ")");
  if (self) {
    GRAFT_CHECK_USAGE(!o.data.empty(), "--self-train ", o.self_train, " needs the target's labelled ", what,
                      " (expected --data ", text ? "FILE" : "FOLDER", " next to --unlabeled)");
    // Text's strong view is token dropout, whatever --augment says (text has no other augmentation).
    GRAFT_CHECK_USAGE(text || o.self_train != "fixmatch" || o.augment != "none", "--self-train fixmatch with --augment ",
                      o.augment, ": FixMatch learns from a strongly augmented view (expected --augment light or "
                      "strong)");
  }
  // DAN on a linear probe aligns the head's output, the layer that trains
  // (the DAN paper adapts the task layers); the adversarial methods need
  // features that train.
  if (adapt && o.adapt != "dan")
    GRAFT_CHECK_USAGE(o.strategy != "linear", "--adapt ", o.adapt, " with --strategy ", o.strategy,
                      ": adversarial adaptation aligns the backbone's features, which a linear probe freezes "
                      "(expected --strategy partial:N or full, or --adapt dan, which aligns the head's output)");
}

}  // namespace graft
