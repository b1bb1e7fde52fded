#include "graft/face/protocol.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "graft/core/error.h"

namespace graft {

namespace {

// Fisher-Yates with mt19937_64 (whose sequence the standard fixes, unlike
// std::shuffle's use of it), so splits are the same on every platform.
template <typename T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

double accuracy_at(const std::vector<const FacePair*>& pairs, double t) {
  if (pairs.empty()) return 0;
  int64_t right = 0;
  for (const FacePair* p : pairs) right += ((p->distance < t) == p->same);
  return static_cast<double>(right) / static_cast<double>(pairs.size());
}

double best_threshold_of(const std::vector<const FacePair*>& pairs) {
  GRAFT_CHECK(!pairs.empty(), "face verification: no pairs to choose a threshold on");
  std::vector<const FacePair*> sorted = pairs;
  std::sort(sorted.begin(), sorted.end(),
            [](const FacePair* a, const FacePair* b) { return a->distance < b->distance; });
  // Sweep: threshold below everything accepts nothing (all impostors right).
  int64_t right = 0;
  for (const FacePair* p : sorted) right += !p->same;
  int64_t best = right;
  double best_t = sorted.front()->distance - 1e-6;
  for (size_t i = 0; i < sorted.size(); ++i) {
    right += sorted[i]->same ? 1 : -1;  // sorted[i] becomes accepted
    const bool boundary = i + 1 == sorted.size() || sorted[i + 1]->distance > sorted[i]->distance;
    if (!boundary) continue;
    const double t = i + 1 == sorted.size() ? sorted[i]->distance + 1e-6
                                            : 0.5 * (sorted[i]->distance + sorted[i + 1]->distance);
    if (right > best) {
      best = right;
      best_t = t;
    }
  }
  return best_t;
}

}  // namespace

std::vector<FacePair> make_face_pairs(const std::vector<int64_t>& labels, int folds, uint64_t seed) {
  GRAFT_CHECK(folds >= 2, "--folds: ", folds, " (expected at least 2)");
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<FacePair> pairs;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j)
      if (labels[i] == labels[j]) pairs.push_back({i, j, true});
  const int64_t genuine = static_cast<int64_t>(pairs.size());
  GRAFT_CHECK(genuine > 0, "face verification: no genuine pair (expected an identity with 2 or more faces)");
  int64_t different = 0;
  std::map<int64_t, int64_t> count;
  for (int64_t l : labels) ++count[l];
  for (const auto& [l, c] : count) different += c * (n - c);
  different /= 2;
  GRAFT_CHECK(different > 0, "face verification: no impostor pair (expected 2 or more identities)");
  std::mt19937_64 rng(seed);
  if (different <= genuine) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i + 1; j < n; ++j)
        if (labels[i] != labels[j]) pairs.push_back({i, j, false});
  } else {
    std::set<std::pair<int64_t, int64_t>> taken;
    while (static_cast<int64_t>(taken.size()) < genuine) {
      int64_t i = static_cast<int64_t>(rng() % n), j = static_cast<int64_t>(rng() % n);
      if (labels[i] == labels[j]) continue;
      if (i > j) std::swap(i, j);
      if (taken.insert({i, j}).second) pairs.push_back({i, j, false});
    }
  }
  std::vector<size_t> order(pairs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  seeded_shuffle(order, rng);
  for (size_t p = 0; p < order.size(); ++p) pairs[order[p]].fold = static_cast<int>(p % folds);
  return pairs;
}

double best_face_threshold(const std::vector<FacePair>& pairs) {
  std::vector<const FacePair*> ptrs;
  for (const auto& p : pairs) ptrs.push_back(&p);
  return best_threshold_of(ptrs);
}

VerificationResult evaluate_verification(const torch::Tensor& embeddings, const std::vector<int64_t>& labels,
                                         int folds, double far, uint64_t seed) {
  GRAFT_CHECK(embeddings.dim() == 2 && embeddings.size(0) == static_cast<int64_t>(labels.size()),
              "face verification: embeddings of shape ", embeddings.sizes(), " for ", labels.size(),
              " labels (expected [", labels.size(), ", D])");
  GRAFT_CHECK(far > 0 && far < 1, "--far: ", far, " (expected between 0 and 1)");
  VerificationResult r;
  r.far_target = far;
  r.pairs = make_face_pairs(labels, folds, seed);
  const auto e = embeddings.to(torch::kFloat64).contiguous();
  for (auto& p : r.pairs) {
    p.distance = (e[p.a] - e[p.b]).norm().item<double>();
    (p.same ? r.genuine : r.impostor)++;
  }
  double sum = 0, sq = 0;
  for (int f = 0; f < folds; ++f) {
    std::vector<const FacePair*> train, test;
    for (const auto& p : r.pairs) (p.fold == f ? test : train).push_back(&p);
    const double t = best_threshold_of(train);
    const double acc = accuracy_at(test, t);
    r.fold_threshold.push_back(t);
    r.fold_accuracy.push_back(acc);
    sum += acc;
    sq += acc * acc;
  }
  r.accuracy = sum / folds;
  r.accuracy_std = std::sqrt(std::max(0.0, sq / folds - r.accuracy * r.accuracy));
  r.best_threshold = best_face_threshold(r.pairs);
  // ROC AUC = P(genuine distance < impostor distance) + 0.5 P(equal).
  std::vector<double> gen, imp;
  for (const auto& p : r.pairs) (p.same ? gen : imp).push_back(p.distance);
  std::sort(gen.begin(), gen.end());
  std::sort(imp.begin(), imp.end());
  double wins = 0;
  for (double d : imp) {
    const auto lo = std::lower_bound(gen.begin(), gen.end(), d);
    const auto hi = std::upper_bound(gen.begin(), gen.end(), d);
    wins += static_cast<double>(lo - gen.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  r.auc = wins / (static_cast<double>(gen.size()) * static_cast<double>(imp.size()));
  // TAR at FAR: accept d < t with t the (floor(far * impostors))-th smallest
  // impostor distance, so at most that many impostors are accepted.
  const size_t allowed = static_cast<size_t>(std::floor(far * static_cast<double>(imp.size())));
  r.far_threshold = allowed < imp.size() ? imp[allowed] : imp.back() + 1e-6;
  r.tar_at_far = static_cast<double>(std::lower_bound(gen.begin(), gen.end(), r.far_threshold) - gen.begin()) /
                 static_cast<double>(gen.size());
  return r;
}

IdentificationSplit split_for_identification(const std::vector<int64_t>& labels, int k, uint64_t seed) {
  GRAFT_CHECK(k >= 1, "identification: k = ", k, " enrolment images (expected at least 1)");
  std::map<int64_t, std::vector<int64_t>> rows;
  for (size_t i = 0; i < labels.size(); ++i) rows[labels[i]].push_back(static_cast<int64_t>(i));
  std::mt19937_64 rng(seed);
  IdentificationSplit s;
  for (auto& [label, r] : rows) {
    if (static_cast<int64_t>(r.size()) <= k) continue;
    seeded_shuffle(r, rng);
    s.enrol.insert(s.enrol.end(), r.begin(), r.begin() + k);
    s.probe.insert(s.probe.end(), r.begin() + k, r.end());
  }
  return s;
}

IdentificationResult evaluate_identification(const torch::Tensor& embeddings, const std::vector<int64_t>& labels,
                                             int k, int trials, uint64_t seed) {
  GRAFT_CHECK(trials >= 1, "identification: ", trials, " trials (expected at least 1)");
  IdentificationResult r;
  r.k = k;
  r.trials = trials;
  const auto e = embeddings.to(torch::kFloat64);
  double sum = 0, sq = 0;
  for (int t = 0; t < trials; ++t) {
    const auto split = split_for_identification(labels, k, seed + static_cast<uint64_t>(t));
    GRAFT_CHECK(!split.probe.empty(), "identification with k = ", k,
                ": no identity has more than k images (expected at least one)");
    std::vector<int64_t> ids;
    std::vector<torch::Tensor> templates;
    for (size_t i = 0; i < split.enrol.size(); i += static_cast<size_t>(k)) {
      auto m = e.index_select(0, torch::tensor(std::vector<int64_t>(split.enrol.begin() + i,
                                                                     split.enrol.begin() + i + k)))
                   .mean(0);
      templates.push_back(m / m.norm().clamp_min(1e-12));
      ids.push_back(labels[split.enrol[i]]);
    }
    const auto tmpl = torch::stack(templates);
    const auto probes = e.index_select(0, torch::tensor(split.probe));
    const auto nearest = torch::cdist(probes, tmpl).argmin(1);
    int64_t right = 0;
    for (size_t p = 0; p < split.probe.size(); ++p)
      right += ids[nearest[static_cast<int64_t>(p)].item<int64_t>()] == labels[split.probe[p]];
    const double acc = static_cast<double>(right) / static_cast<double>(split.probe.size());
    r.trial_rank1.push_back(acc);
    r.identities = static_cast<int64_t>(templates.size());
    r.probes = static_cast<int64_t>(split.probe.size());
    sum += acc;
    sq += acc * acc;
  }
  r.rank1 = sum / trials;
  r.rank1_std = std::sqrt(std::max(0.0, sq / trials - r.rank1 * r.rank1));
  return r;
}

}  // namespace graft
