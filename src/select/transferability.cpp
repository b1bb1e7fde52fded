// Transferability scores and feature-distribution similarity, in float64.

#include "graft/select/transferability.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "graft/core/error.h"
#include "graft/core/runtime.h"

namespace graft {

namespace {

torch::Tensor as_matrix(const torch::Tensor& t, const char* what) {
  GRAFT_CHECK(t.dim() == 2, what, ": expected a matrix [N, D], got ", t.sizes());
  GRAFT_CHECK(t.size(0) > 0 && t.size(1) > 0, what, ": empty matrix ", t.sizes());
  torch::Tensor d = t.to(torch::kCPU, torch::kFloat64).contiguous();
  GRAFT_CHECK(torch::isfinite(d).all().item<bool>(), what, ": holds NaN or infinite values");
  return d;
}

// Labels as int64 in 0..C-1 with C >= 2 classes present; returns C.
int64_t check_labels(const torch::Tensor& labels, int64_t n, const char* what) {
  GRAFT_CHECK(labels.dim() == 1 && labels.size(0) == n, what, ": expected ", n,
              " labels, got shape ", labels.sizes());
  GRAFT_CHECK(labels.min().item<int64_t>() >= 0, what, ": negative label");
  int64_t classes = labels.max().item<int64_t>() + 1;
  int64_t present = std::get<0>(at::_unique(labels)).size(0);
  GRAFT_CHECK(present >= 2, what, ": the target set has ", present,
              " class (a transferability score needs at least 2)");
  return classes;
}

}  // namespace

double logme(const torch::Tensor& features, const torch::Tensor& labels) {
  torch::Tensor f = as_matrix(features, "LogME features");
  const int64_t n = f.size(0), d = f.size(1);
  torch::Tensor y = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t classes = check_labels(y, n, "LogME labels");

  // F = U S V^T, truncated to the rank k: sigma = S^2 from the eigenvalues
  // of the smaller Gram matrix.
  torch::Tensor u, sigma;
  if (n > d) {
    auto [evals, evecs] = torch::linalg_eigh(f.t().mm(f));
    // Descending, as an SVD returns them.
    evals = evals.flip(0).clamp_min(0);
    evecs = evecs.flip(1);
    torch::Tensor s = evals.sqrt();
    int64_t k = s.gt(1e-10).sum().item<int64_t>();
    s = s.narrow(0, 0, k);
    u = f.mm(evecs.narrow(1, 0, k)) / s.unsqueeze(0);
    sigma = s.pow(2);
  } else {
    auto [uu, s, vh] = torch::linalg_svd(f, /*full_matrices=*/false);
    u = uu;
    sigma = s.pow(2);
  }
  const double* sg = sigma.data_ptr<double>();
  const int64_t k = sigma.size(0);

  double total = 0;
  for (int64_t c = 0; c < classes; ++c) {
    torch::Tensor yc = y.eq(c).to(torch::kFloat64);
    torch::Tensor x = u.t().mv(yc).contiguous();
    const double* xp = x.data_ptr<double>();
    std::vector<double> x2(static_cast<size_t>(k));
    double x2_sum = 0;
    for (int64_t i = 0; i < k; ++i) {
      x2[i] = xp[i] * xp[i];
      x2_sum += x2[i];
    }
    // The part of y outside the span of U.
    const double res_x2 = yc.pow(2).sum().item<double>() - x2_sum;
    double alpha = 1.0, beta = 1.0, evidence = 0;
    for (int it = 0; it < 11; ++it) {
      const double t = alpha / beta;
      double gamma = 0, m2 = 0, res2 = res_x2;
      for (int64_t i = 0; i < k; ++i) {
        gamma += sg[i] / (sg[i] + t);
        m2 += sg[i] * x2[i] / ((t + sg[i]) * (t + sg[i]));
        const double r = 1 + sg[i] / t;
        res2 += x2[i] / (r * r);
      }
      alpha = gamma / (m2 + 1e-5);
      beta = (static_cast<double>(n) - gamma) / (res2 + 1e-5);
      const double t_new = alpha / beta;
      double log_det = 0;
      for (int64_t i = 0; i < k; ++i) log_det += std::log(alpha + beta * sg[i]);
      evidence = (d / 2.0 * std::log(alpha) + n / 2.0 * std::log(beta) - 0.5 * log_det -
                  beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * std::log(2 * M_PI)) /
                 static_cast<double>(n);
      if (std::abs(t_new - t) / t <= 1e-3) break;
    }
    total += evidence;
  }
  return total / static_cast<double>(classes);
}

double h_score(const torch::Tensor& features, const torch::Tensor& labels) {
  torch::Tensor f = as_matrix(features, "H-score features");
  const int64_t n = f.size(0);
  torch::Tensor y = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t classes = check_labels(y, n, "H-score labels");
  torch::Tensor fc = f - f.mean(0, true);
  torch::Tensor cov_f = fc.t().mm(fc) / static_cast<double>(n);
  // Every row replaced by its class mean.
  torch::Tensor g = torch::zeros_like(f);
  for (int64_t c = 0; c < classes; ++c) {
    torch::Tensor mask = y.eq(c);
    if (!mask.any().item<bool>()) continue;
    torch::Tensor idx = mask.nonzero().squeeze(1);
    g.index_copy_(0, idx, f.index_select(0, idx).mean(0, true).expand({idx.size(0), f.size(1)}));
  }
  torch::Tensor gc = g - g.mean(0, true);
  torch::Tensor cov_g = gc.t().mm(gc) / static_cast<double>(n);
  return torch::linalg_pinv(cov_f, 1e-10, /*hermitian=*/true).mm(cov_g).trace().item<double>();
}

double leep(const torch::Tensor& source_probs, const torch::Tensor& labels) {
  torch::Tensor p = as_matrix(source_probs, "LEEP source probabilities");
  const int64_t n = p.size(0);
  GRAFT_CHECK(p.min().item<double>() >= 0, "LEEP source probabilities: negative value");
  GRAFT_CHECK((p.sum(1) - 1).abs().max().item<double>() < 1e-3,
              "LEEP source probabilities: rows do not sum to 1");
  torch::Tensor y = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t classes = check_labels(y, n, "LEEP labels");
  torch::Tensor onehot = torch::one_hot(y, classes).to(torch::kFloat64);  // [N, C]
  torch::Tensor joint = onehot.t().mm(p) / static_cast<double>(n);        // [C, Cs] P(y, z)
  torch::Tensor pz = joint.sum(0, true);                                   // [1, Cs]
  torch::Tensor cond = joint / pz.clamp_min(1e-300);                       // P(y | z)
  torch::Tensor eep = p.mm(cond.t());                                      // [N, C]
  return eep.gather(1, y.unsqueeze(1)).log().mean().item<double>();
}

double nce(const torch::Tensor& source_predictions, const torch::Tensor& labels) {
  torch::Tensor z = source_predictions.to(torch::kCPU, torch::kInt64).contiguous();
  torch::Tensor y = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t n = y.size(0);
  const int64_t classes = check_labels(y, n, "NCE labels");
  GRAFT_CHECK(z.dim() == 1 && z.size(0) == n, "NCE source predictions: expected ", n,
              " values, got shape ", z.sizes());
  GRAFT_CHECK(z.min().item<int64_t>() >= 0, "NCE source predictions: negative class");
  const int64_t zs = z.max().item<int64_t>() + 1;
  torch::Tensor joint = torch::zeros({zs, classes}, torch::kFloat64);
  joint.index_put_({z, y}, torch::ones({n}, torch::kFloat64), /*accumulate=*/true);
  joint /= static_cast<double>(n);
  torch::Tensor pz = joint.sum(1, true).expand_as(joint);
  torch::Tensor nz = joint.gt(0);
  // -H(Y|Z) = sum P(z, y) log P(y | z)
  return (joint.masked_select(nz) * (joint.masked_select(nz) / pz.masked_select(nz)).log())
      .sum()
      .item<double>();
}

double linear_cka(const torch::Tensor& x_in, const torch::Tensor& y_in) {
  torch::Tensor x = as_matrix(x_in, "CKA X"), y = as_matrix(y_in, "CKA Y");
  GRAFT_CHECK(x.size(0) == y.size(0), "CKA: X has ", x.size(0), " rows and Y ", y.size(0),
              " (expected the same inputs)");
  x = x - x.mean(0, true);
  y = y - y.mean(0, true);
  const double xy = y.t().mm(x).pow(2).sum().item<double>();
  const double xx = x.t().mm(x).norm().item<double>();
  const double yy = y.t().mm(y).norm().item<double>();
  GRAFT_CHECK(xx > 0 && yy > 0, "CKA: a representation is constant");
  return xy / (xx * yy);
}

double domain_cka(const torch::Tensor& x_in, const torch::Tensor& y_in) {
  torch::Tensor x = as_matrix(x_in, "domain CKA X"), y = as_matrix(y_in, "domain CKA Y");
  GRAFT_CHECK(x.size(1) == y.size(1), "domain CKA: X has ", x.size(1), " features and Y ",
              y.size(1), " (expected the same backbone)");
  x = x - x.mean(0, true);
  y = y - y.mean(0, true);
  torch::Tensor cx = x.t().mm(x) / static_cast<double>(x.size(0));
  torch::Tensor cy = y.t().mm(y) / static_cast<double>(y.size(0));
  const double nx = cx.norm().item<double>(), ny = cy.norm().item<double>();
  GRAFT_CHECK(nx > 0 && ny > 0, "domain CKA: a feature set is constant");
  return (cx * cy).sum().item<double>() / (nx * ny);
}

namespace {

torch::Tensor sq_dists(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor an = a.pow(2).sum(1, true), bn = b.pow(2).sum(1, true);
  return (an + bn.t() - 2 * a.mm(b.t())).clamp_min(0);
}

}  // namespace

double mmd_rbf(const torch::Tensor& x_in, const torch::Tensor& y_in, double sigma) {
  torch::Tensor x = as_matrix(x_in, "MMD X"), y = as_matrix(y_in, "MMD Y");
  GRAFT_CHECK(x.size(1) == y.size(1), "MMD: X has ", x.size(1), " features and Y ", y.size(1));
  GRAFT_CHECK(sigma > 0 && std::isfinite(sigma), "MMD: bandwidth ", sigma, " (expected > 0)");
  const double g = 1.0 / (2 * sigma * sigma);
  auto k = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return (sq_dists(a, b) * -g).exp().mean().item<double>();
  };
  return k(x, x) + k(y, y) - 2 * k(x, y);
}

double median_sigma(const torch::Tensor& x_in, const torch::Tensor& y_in) {
  torch::Tensor x = as_matrix(x_in, "MMD X"), y = as_matrix(y_in, "MMD Y");
  torch::Tensor z = torch::cat({x, y});
  const int64_t m = z.size(0);
  torch::Tensor d = sq_dists(z, z);
  torch::Tensor upper = torch::triu_indices(m, m, 1);
  torch::Tensor v = d.index({upper[0], upper[1]});
  GRAFT_CHECK(v.numel() > 0, "MMD: need at least two samples");
  // numpy's median: the mean of the two middle values for an even count.
  torch::Tensor s = std::get<0>(v.sort());
  const int64_t c = s.numel();
  double med = c % 2 ? s[c / 2].item<double>()
                     : 0.5 * (s[c / 2 - 1].item<double>() + s[c / 2].item<double>());
  GRAFT_CHECK(med > 0, "MMD: the median distance is zero (identical samples)");
  return std::sqrt(med / 2);
}

double mmd_permutation_p(const torch::Tensor& x_in, const torch::Tensor& y_in, double sigma, int64_t permutations,
                         uint64_t seed) {
  torch::Tensor x = as_matrix(x_in, "MMD X"), y = as_matrix(y_in, "MMD Y");
  GRAFT_CHECK(x.size(1) == y.size(1), "MMD: X has ", x.size(1), " features and Y ", y.size(1));
  GRAFT_CHECK(sigma > 0 && std::isfinite(sigma), "MMD: bandwidth ", sigma, " (expected > 0)");
  GRAFT_CHECK(permutations >= 1, "MMD permutation test: ", permutations, " permutations (expected at least 1)");
  const int64_t n = x.size(0), m = y.size(0), total = n + m;
  // MMD^2 (the V-statistic) of a split is a^T K a with a = 1/n on the rows
  // playing X and -1/m on the others: one product with K for all splits.
  torch::Tensor z = torch::cat({x, y});
  torch::Tensor k = (sq_dists(z, z) * (-1.0 / (2 * sigma * sigma))).exp();
  torch::Tensor a = torch::empty({total, permutations + 1}, torch::kFloat64);
  torch::Tensor base = torch::cat({torch::full({n}, 1.0 / n, torch::kFloat64), torch::full({m}, -1.0 / m, torch::kFloat64)});
  a.select(1, 0).copy_(base);
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  for (int64_t p = 0; p < permutations; ++p) {
    // Row perm[i] of the pooled set plays position i.
    torch::Tensor perm = torch::randperm(total, gen, torch::kInt64);
    a.select(1, p + 1).index_copy_(0, perm, base);
  }
  torch::Tensor stats = (k.mm(a) * a).sum(0);
  const double observed = stats[0].item<double>();
  const int64_t as_large = (stats.narrow(0, 1, permutations) >= observed).sum().item<int64_t>();
  return static_cast<double>(1 + as_large) / static_cast<double>(1 + permutations);
}

namespace {

// Held-out rows of one fold classified as the other domain, by an
// L2-regularised logistic regression fitted by Newton's method on the rest.
std::pair<int64_t, int64_t> pad_fold_errors(const torch::Tensor& z, const torch::Tensor& t,
                                             const torch::Tensor& test, double l2) {
  torch::Tensor train = test.logical_not();
  torch::Tensor zt = z.index({train}), tt = t.index({train});
  torch::Tensor mean = zt.mean(0, true);
  torch::Tensor sd = zt.std(0, /*unbiased=*/false, true);
  sd = torch::where(sd > 0, sd, torch::ones_like(sd));
  auto design = [&](const torch::Tensor& rows) {
    torch::Tensor s = (rows - mean) / sd;
    return torch::cat({s, torch::ones({s.size(0), 1}, torch::kFloat64)}, 1);
  };
  torch::Tensor xtr = design(zt);
  const int64_t d = xtr.size(1);
  torch::Tensor reg = torch::full({d}, l2, torch::kFloat64);
  reg[d - 1] = 0;  // the bias is not penalised
  torch::Tensor w = torch::zeros({d}, torch::kFloat64);
  for (int it = 0; it < 50; ++it) {
    torch::Tensor p = torch::sigmoid(xtr.mv(w));
    torch::Tensor grad = xtr.t().mv(p - tt) + reg * w;
    torch::Tensor h = xtr.t().mm(xtr * (p * (1 - p)).unsqueeze(1)) + torch::diag(reg + 1e-10);
    torch::Tensor step = at::linalg_solve(h, grad);
    w -= step;
    if (step.abs().max().item<double>() < 1e-9) break;
  }
  torch::Tensor logits = design(z.index({test})).mv(w);
  torch::Tensor truth = t.index({test});
  torch::Tensor wrong = (logits > 0).to(torch::kFloat64).ne(truth);
  const int64_t wrong_x = (wrong & truth.eq(0)).sum().item<int64_t>();
  const int64_t wrong_y = (wrong & truth.eq(1)).sum().item<int64_t>();
  return {wrong_x, wrong_y};
}

}  // namespace

ProxyADistance proxy_a_distance(const torch::Tensor& x_in, const torch::Tensor& y_in, int64_t folds, double l2) {
  torch::Tensor x = as_matrix(x_in, "PAD X"), y = as_matrix(y_in, "PAD Y");
  GRAFT_CHECK(x.size(1) == y.size(1), "PAD: X has ", x.size(1), " features and Y ", y.size(1));
  GRAFT_CHECK(folds >= 2, "PAD: ", folds, " folds (expected at least 2)");
  GRAFT_CHECK(x.size(0) >= folds && y.size(0) >= folds, "PAD: ", x.size(0), " and ", y.size(0),
              " rows (expected at least one per fold in each set, ", folds, " folds)");
  GRAFT_CHECK(l2 > 0, "PAD: l2 ", l2, " (expected > 0)");
  const int64_t n = x.size(0), m = y.size(0);
  torch::Tensor z = torch::cat({x, y});
  torch::Tensor t = torch::cat({torch::zeros({n}, torch::kFloat64), torch::ones({m}, torch::kFloat64)});
  torch::Tensor fold = torch::cat({torch::arange(n, torch::kInt64) % folds, torch::arange(m, torch::kInt64) % folds});
  int64_t wrong_x = 0, wrong_y = 0;
  for (int64_t f = 0; f < folds; ++f) {
    auto [wx, wy] = pad_fold_errors(z, t, fold.eq(f), l2);
    wrong_x += wx;
    wrong_y += wy;
  }
  ProxyADistance r;
  r.error = 0.5 * (static_cast<double>(wrong_x) / n + static_cast<double>(wrong_y) / m);
  r.pad = 2 * (1 - 2 * r.error);
  return r;
}

namespace {

// At most n rows, seeded; rows kept in order.
torch::Tensor sample_rows(const torch::Tensor& t, int64_t n, uint64_t seed) {
  if (t.size(0) <= n) return t;
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  torch::Tensor idx = torch::randperm(t.size(0), gen, torch::kInt64).narrow(0, 0, n);
  return t.index_select(0, std::get<0>(idx.sort()));
}

}  // namespace

DomainShift domain_shift(const torch::Tensor& source, const torch::Tensor& target, int64_t max_samples,
                         int64_t permutations, uint64_t seed) {
  const torch::Tensor a = sample_rows(target, max_samples, mix_seed(seed, 501));
  const torch::Tensor b = sample_rows(source, max_samples, mix_seed(seed, 502));
  DomainShift d;
  d.cka = domain_cka(b, a);
  d.sigma = median_sigma(b, a);
  d.mmd = mmd_rbf(b, a, d.sigma);
  d.mmd_p = mmd_permutation_p(b, a, d.sigma, permutations, mix_seed(seed, 503));
  const ProxyADistance pad = proxy_a_distance(b, a);
  d.pad = pad.pad;
  d.pad_error = pad.error;
  return d;
}

}  // namespace graft
