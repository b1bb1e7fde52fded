#include "graft/eval/metrics.h"

#include <sstream>

#include <torch/torch.h>

#include "graft/core/error.h"

namespace graft {

Metrics compute_metrics(const torch::Tensor& logits_in, const torch::Tensor& labels_in,
                        const std::vector<std::string>& classes) {
  torch::Tensor logits = logits_in.to(torch::kCPU, torch::kFloat32);
  torch::Tensor labels = labels_in.to(torch::kCPU, torch::kInt64);
  const int64_t n = logits.size(0), c = static_cast<int64_t>(classes.size());
  GRAFT_CHECK(logits.dim() == 2 && logits.size(1) == c, "metrics: logits have ", logits.size(1),
              " columns, expected ", c, " classes");
  GRAFT_CHECK(labels.size(0) == n, "metrics: ", labels.size(0), " labels for ", n, " predictions");
  Metrics m;
  m.count = n;
  m.confusion.assign(c, std::vector<int64_t>(c, 0));
  m.per_class.resize(c);
  if (n == 0) return m;
  m.loss = torch::nn::functional::cross_entropy(logits, labels).item<double>();
  torch::Tensor pred = logits.argmax(1);
  auto p = pred.accessor<int64_t, 1>();
  auto y = labels.accessor<int64_t, 1>();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    m.confusion[y[i]][p[i]] += 1;
    correct += (y[i] == p[i]);
  }
  m.accuracy = double(correct) / n;
  if (c > 5) {
    torch::Tensor top = std::get<1>(logits.topk(5, 1));
    m.top5 = top.eq(labels.unsqueeze(1)).any(1).to(torch::kFloat64).mean().item<double>();
  }
  for (int64_t k = 0; k < c; ++k) {
    int64_t tp = m.confusion[k][k], predicted = 0, actual = 0;
    for (int64_t j = 0; j < c; ++j) {
      predicted += m.confusion[j][k];
      actual += m.confusion[k][j];
    }
    auto& cm = m.per_class[k];
    cm.name = classes[k];
    cm.support = actual;
    cm.precision = predicted ? double(tp) / predicted : 0.0;
    cm.recall = actual ? double(tp) / actual : 0.0;
    cm.f1 = (cm.precision + cm.recall) > 0
                ? 2 * cm.precision * cm.recall / (cm.precision + cm.recall)
                : 0.0;
  }
  return m;
}

double balanced_accuracy(const Metrics& m) {
  double sum = 0;
  int64_t present = 0;
  for (const auto& c : m.per_class)
    if (c.support > 0) {
      sum += c.recall;
      ++present;
    }
  return present ? sum / static_cast<double>(present) : 0.0;
}

double macro_f1(const Metrics& m) {
  double sum = 0;
  int64_t present = 0;
  for (size_t k = 0; k < m.per_class.size(); ++k) {
    int64_t predicted = 0;
    for (const auto& row : m.confusion) predicted += row[k];
    if (m.per_class[k].support == 0 && predicted == 0) continue;
    sum += m.per_class[k].f1;
    ++present;
  }
  return present ? sum / static_cast<double>(present) : 0.0;
}

nlohmann::ordered_json to_json(const Metrics& m) {
  nlohmann::ordered_json j;
  j["count"] = m.count;
  j["accuracy"] = m.accuracy;
  if (m.top5 >= 0) j["top5"] = m.top5;
  j["balanced_accuracy"] = balanced_accuracy(m);
  j["macro_f1"] = macro_f1(m);
  j["loss"] = m.loss;
  nlohmann::ordered_json per = nlohmann::ordered_json::array();
  std::vector<std::string> names;
  for (const auto& c : m.per_class) {
    per.push_back({{"class", c.name},
                   {"precision", c.precision},
                   {"recall", c.recall},
                   {"f1", c.f1},
                   {"support", c.support}});
    names.push_back(c.name);
  }
  j["per_class"] = per;
  j["classes"] = names;
  j["confusion"] = m.confusion;
  return j;
}

std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string q = "\"";
  for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

namespace {

}  // namespace

std::string predictions_csv(const torch::Tensor& logits, const torch::Tensor& labels,
                            const std::vector<std::string>& identities,
                            const std::vector<std::string>& classes) {
  GRAFT_CHECK(logits.size(0) == static_cast<int64_t>(identities.size()) &&
                  labels.size(0) == logits.size(0),
              "predictions: ", logits.size(0), " rows for ", identities.size(), " samples");
  torch::Tensor p = torch::softmax(logits.to(torch::kFloat32), 1);
  auto [conf, pred] = p.max(1);
  std::ostringstream os;
  os << "path,label,predicted,confidence\n";
  for (size_t i = 0; i < identities.size(); ++i) {
    const int64_t y = labels[static_cast<int64_t>(i)].item<int64_t>();
    const int64_t z = pred[static_cast<int64_t>(i)].item<int64_t>();
    os << csv_field(identities[i]) << ',' << csv_field(classes.at(static_cast<size_t>(y))) << ','
       << csv_field(classes.at(static_cast<size_t>(z))) << ','
       << conf[static_cast<int64_t>(i)].item<float>() << '\n';
  }
  return os.str();
}

std::vector<LabelScore> top_labels(const torch::Tensor& logits,
                                   const std::vector<std::string>& classes, int64_t k) {
  GRAFT_CHECK(logits.dim() == 1 && logits.size(0) == static_cast<int64_t>(classes.size()),
              "top labels: logits of shape ", logits.sizes(), ", expected [", classes.size(), "]");
  k = std::min<int64_t>(k, logits.size(0));
  const torch::Tensor probs = torch::softmax(logits.to(torch::kFloat32), 0);
  auto [p, idx] = probs.topk(k);
  std::vector<LabelScore> top;
  for (int64_t i = 0; i < k; ++i)
    top.push_back({classes.at(static_cast<size_t>(idx[i].item<int64_t>())), p[i].item<double>()});
  return top;
}

}  // namespace graft
