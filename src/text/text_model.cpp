#include "graft/text/text_model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/models/head.h"
#include "graft/models/saved_model.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"

namespace fs = std::filesystem;

namespace graft {

std::vector<std::string> text_backbone_names() {
  std::vector<std::string> names{"bert"};
  for (const auto& s : bert_size_names()) names.push_back(s.rfind("bert-", 0) == 0 ? s : "bert-" + s);
  names.push_back("tfidf");
  names.push_back("textcnn");
  names.push_back("use-lite");  // [use-lite]
  return names;
}

void check_text_backbone(const std::string& name) {
  std::string list;
  for (const auto& n : text_backbone_names()) {
    if (n == name) return;
    list += (list.empty() ? "" : ", ") + n;
  }
  throw UsageError(str_cat("--backbone: '", name, "' is not a text backbone (expected one of ",
                           list, ")"));
}

TextBatch collate_texts(const std::vector<const EncodedText*>& items, int64_t pad_id) {
  const int64_t n = static_cast<int64_t>(items.size());
  int64_t t = 0;
  for (const auto* e : items) t = std::max<int64_t>(t, static_cast<int64_t>(e->ids.size()));
  TextBatch b;
  b.input_ids = torch::full({n, t}, pad_id, torch::kInt64);
  b.token_type_ids = torch::zeros({n, t}, torch::kInt64);
  b.attention_mask = torch::zeros({n, t}, torch::kInt64);
  auto ids = b.input_ids.accessor<int64_t, 2>();
  auto types = b.token_type_ids.accessor<int64_t, 2>();
  auto mask = b.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& e = *items[static_cast<size_t>(i)];
    for (size_t j = 0; j < e.ids.size(); ++j) {
      ids[i][static_cast<int64_t>(j)] = e.ids[j];
      types[i][static_cast<int64_t>(j)] = e.types[j];
      mask[i][static_cast<int64_t>(j)] = 1;
    }
  }
  return b;
}

std::vector<std::vector<int64_t>> length_batches(const std::vector<size_t>& order,
                                                 const std::vector<int64_t>& lengths,
                                                 int64_t batch_size, int64_t bucket) {
  std::vector<int64_t> items(order.begin(), order.end());
  if (bucket > 1) {
    const size_t run = static_cast<size_t>(bucket * batch_size);
    for (size_t s = 0; s < items.size(); s += run) {
      auto end = items.begin() + static_cast<std::ptrdiff_t>(std::min(items.size(), s + run));
      std::stable_sort(items.begin() + static_cast<std::ptrdiff_t>(s), end, [&](int64_t a, int64_t b) {
        return lengths[static_cast<size_t>(a)] > lengths[static_cast<size_t>(b)];
      });
    }
  }
  std::vector<std::vector<int64_t>> batches;
  for (size_t s = 0; s < items.size(); s += static_cast<size_t>(batch_size)) {
    size_t e = std::min(items.size(), s + static_cast<size_t>(batch_size));
    batches.emplace_back(items.begin() + static_cast<std::ptrdiff_t>(s),
                         items.begin() + static_cast<std::ptrdiff_t>(e));
  }
  return batches;
}

// ---------------------------------------------------------------- BERT head

BertClassifierImpl::BertClassifierImpl(const BertConfig& c, int64_t num_classes, double classifier_dropout,
                                       const std::string& head) {
  bert = register_module("bert", BertModel(c));
  dropout = register_module("dropout", FastDropout(classifier_dropout));
  classifier = make_head(head, c.hidden_size, num_classes);
  register_module("classifier", classifier.ptr());
}

torch::Tensor BertClassifierImpl::features(const TextBatch& b) {
  return bert->forward(b.input_ids, b.token_type_ids, b.attention_mask).pooled;
}

torch::Tensor BertClassifierImpl::classify(const torch::Tensor& pooled) {
  return classifier.forward(dropout->forward(pooled));
}

torch::Tensor BertClassifierImpl::forward(const TextBatch& b) { return classify(features(b)); }

int bert_stage(const std::string& name, int64_t num_layers) {
  auto starts = [&](const char* p) { return name.rfind(p, 0) == 0; };
  // [use-lite] UseLiteClassifier's encoder "use" has BERT's stage names.
  if (starts("use.")) return bert_stage("bert." + name.substr(4), num_layers);
  if (starts("bert.embeddings.")) return 0;
  if (starts("bert.pooler.")) return static_cast<int>(num_layers) + 1;
  const std::string layer = "bert.encoder.layer.";
  if (starts(layer.c_str())) {
    size_t dot = name.find('.', layer.size());
    return std::stoi(name.substr(layer.size(), dot - layer.size())) + 1;
  }
  return -1;
}

// ------------------------------------------------------------------- TF-IDF

namespace {

constexpr uint64_t kUnigramLimit = uint64_t(1) << 32;

uint64_t bigram_key(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a + 1) << 32) | static_cast<uint64_t>(b);
}

std::string term_text(uint64_t key) {
  if (key < kUnigramLimit) return std::to_string(key);
  return str_cat((key >> 32) - 1, " ", key & 0xffffffffu);
}

}  // namespace

std::vector<uint64_t> Tfidf::terms(const std::vector<int64_t>& doc) const {
  std::vector<uint64_t> t;
  t.reserve(doc.size() * 2);
  for (size_t i = 0; i < doc.size(); ++i) {
    t.push_back(static_cast<uint64_t>(doc[i]));
    if (options_.ngram_max >= 2 && i + 1 < doc.size()) t.push_back(bigram_key(doc[i], doc[i + 1]));
  }
  return t;
}

Tfidf Tfidf::fit(const std::vector<std::vector<int64_t>>& docs, const TfidfOptions& options) {
  GRAFT_CHECK(options.ngram_max == 1 || options.ngram_max == 2, "tfidf: ngram_max ",
              options.ngram_max, " (expected 1 or 2)");
  Tfidf v;
  v.options_ = options;
  std::unordered_map<uint64_t, std::pair<int64_t, int64_t>> stats;  // df, total count
  for (const auto& d : docs) {
    std::vector<uint64_t> t = v.terms(d);
    for (uint64_t k : t) stats[k].second += 1;
    std::sort(t.begin(), t.end());
    t.erase(std::unique(t.begin(), t.end()), t.end());
    for (uint64_t k : t) stats[k].first += 1;
  }
  std::vector<std::pair<uint64_t, int64_t>> kept;  // key, total count
  for (const auto& [k, s] : stats)
    if (s.first >= options.min_df) kept.emplace_back(k, s.second);
  if (options.max_features > 0 && static_cast<int64_t>(kept.size()) > options.max_features) {
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    kept.resize(static_cast<size_t>(options.max_features));
  }
  std::sort(kept.begin(), kept.end());
  const double n = static_cast<double>(docs.size());
  for (const auto& [k, count] : kept) {
    v.index_[k] = static_cast<int64_t>(v.keys_.size());
    v.keys_.push_back(k);
    v.idf_.push_back(std::log((1 + n) / (1 + static_cast<double>(stats[k].first))) + 1);
  }
  return v;
}

SparseRows Tfidf::transform(const std::vector<std::vector<int64_t>>& docs) const {
  SparseRows rows;
  std::map<int64_t, int64_t> counts;
  for (const auto& d : docs) {
    counts.clear();
    for (uint64_t k : terms(d)) {
      auto it = index_.find(k);
      if (it != index_.end()) counts[it->second] += 1;
    }
    double norm = 0;
    size_t start = rows.values.size();
    for (const auto& [f, c] : counts) {
      double tf = options_.sublinear_tf ? 1 + std::log(static_cast<double>(c)) : static_cast<double>(c);
      double w = tf * idf_[static_cast<size_t>(f)];
      norm += w * w;
      rows.indices.push_back(f);
      rows.values.push_back(static_cast<float>(w));
    }
    if (norm > 0) {
      const double s = 1 / std::sqrt(norm);
      for (size_t i = start; i < rows.values.size(); ++i)
        rows.values[i] = static_cast<float>(rows.values[i] * s);
    }
    rows.offsets.push_back(static_cast<int64_t>(rows.indices.size()));
  }
  return rows;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> SparseRows::select(
    const std::vector<int64_t>& which) const {
  std::vector<int64_t> idx, offs;
  std::vector<float> vals;
  for (int64_t r : which) {
    offs.push_back(static_cast<int64_t>(idx.size()));
    for (int64_t i = offsets[static_cast<size_t>(r)]; i < offsets[static_cast<size_t>(r) + 1]; ++i) {
      idx.push_back(indices[static_cast<size_t>(i)]);
      vals.push_back(values[static_cast<size_t>(i)]);
    }
  }
  return {torch::tensor(idx, torch::kInt64), torch::tensor(offs, torch::kInt64),
          torch::tensor(vals, torch::kFloat32)};
}

std::string Tfidf::to_text() const {
  std::ostringstream os;
  os << "graft-tfidf 1\nngram_max " << options_.ngram_max << "\nmin_df " << options_.min_df
     << "\nmax_features " << options_.max_features << "\nsublinear_tf "
     << (options_.sublinear_tf ? 1 : 0) << "\n";
  os.precision(17);
  for (size_t i = 0; i < keys_.size(); ++i) os << term_text(keys_[i]) << '\t' << idf_[i] << '\n';
  return os.str();
}

Tfidf Tfidf::from_text(const std::string& text, const std::string& source) {
  std::istringstream is(text);
  std::string line;
  int64_t lineno = 0;
  auto fail = [&](const std::string& what) {
    throw Error(str_cat("'", source, "' line ", lineno, ": ", what));
  };
  auto next = [&]() {
    if (!std::getline(is, line)) fail("unexpected end of file (expected a graft TF-IDF vectorizer)");
    ++lineno;
  };
  next();
  if (line != "graft-tfidf 1") fail(str_cat("'", line, "' (expected the header 'graft-tfidf 1')"));
  Tfidf v;
  auto setting = [&](const char* key) -> int64_t {
    next();
    std::istringstream ls(line);
    std::string k;
    int64_t value = 0;
    if (!(ls >> k >> value) || k != key) fail(str_cat("'", line, "' (expected '", key, " N')"));
    return value;
  };
  v.options_.ngram_max = setting("ngram_max");
  v.options_.min_df = setting("min_df");
  v.options_.max_features = setting("max_features");
  v.options_.sublinear_tf = setting("sublinear_tf") != 0;
  while (std::getline(is, line)) {
    ++lineno;
    double idf = 0;
    size_t tab = line.find('\t');
    if (tab == std::string::npos) fail(str_cat("'", line, "' (expected TERM<TAB>IDF)"));
    // "A" or "A B": token ids in decimal.
    std::vector<int64_t> ids;
    std::string term = line.substr(0, tab);
    for (size_t p = 0; p <= term.size();) {
      size_t e = std::min(term.find(' ', p), term.size());
      std::string part = term.substr(p, e - p);
      if (part.empty() || part.size() > 9 || part.find_first_not_of("0123456789") != std::string::npos)
        fail(str_cat("'", line, "' (expected a term of one or two token ids)"));
      ids.push_back(std::stoll(part));
      p = e + 1;
    }
    if (ids.size() > 2) fail(str_cat("'", line, "' (expected a term of one or two token ids)"));
    uint64_t key = ids.size() == 1 ? static_cast<uint64_t>(ids[0]) : bigram_key(ids[0], ids[1]);
    try {
      idf = std::stod(line.substr(tab + 1));
    } catch (const std::exception&) {
      fail(str_cat("'", line, "' (expected a number after the tab)"));
    }
    if (!v.keys_.empty() && key <= v.keys_.back()) fail("terms out of order");
    v.index_[key] = static_cast<int64_t>(v.keys_.size());
    v.keys_.push_back(key);
    v.idf_.push_back(idf);
  }
  return v;
}

TfidfClassifierImpl::TfidfClassifierImpl(int64_t features, int64_t num_classes) {
  classifier = register_module("classifier", torch::nn::Linear(features, num_classes));
  torch::NoGradGuard g;
  classifier->weight.zero_();
  classifier->bias.zero_();
}

torch::Tensor TfidfClassifierImpl::forward(const torch::Tensor& indices, const torch::Tensor& offsets,
                                           const torch::Tensor& weights) {
  // Sum over each row's features of value * weight column: a sparse x dense
  // product without a dense [N, V] matrix.
  auto out = torch::embedding_bag(classifier->weight.t(), indices, offsets, false, /*mode=sum*/ 0,
                                  false, weights);
  return std::get<0>(out) + classifier->bias;
}

std::vector<int64_t> tfidf_tokens(const EncodedText& e) {
  if (e.ids.size() <= 2) return {};
  return std::vector<int64_t>(e.ids.begin() + 1, e.ids.end() - 1);
}

// -------------------------------------------------------------- the model

bool split_text_line(const std::string& line, bool pairs, std::string& a, std::string& b) {
  if (!pairs) {
    a = line;
    b.clear();
    return true;
  }
  const size_t tab = line.find('\t');
  if (tab == std::string::npos) return false;
  a = line.substr(0, tab);
  b = line.substr(tab + 1);
  return true;
}

EncodedText TextModel::encode(const std::string& a, const std::string& b, int64_t* truncated) const {
  if (words) return words->encode(a, info.max_length, truncated);  // textcnn (single texts only)
  if (use_tokenizer) {  // [use-lite] SentencePiece ids, cut at max_length; one text only
    GRAFT_CHECK(b.empty(), "a use-lite model reads one text per example, not a pair");
    std::vector<int64_t> ids = use_tokenizer->encode(a);
    const int64_t cut = static_cast<int64_t>(ids.size()) - info.max_length;
    if (cut > 0) {
      ids.resize(static_cast<size_t>(info.max_length));
      if (truncated) *truncated += cut;
    }
    std::vector<int64_t> types(ids.size(), 0);
    return {std::move(ids), std::move(types)};
  }
  const int max_length = static_cast<int>(std::min<int64_t>(info.max_length, int64_t(1) << 30));
  Encoding enc = b.empty() ? tokenizer->encode(a, std::nullopt, max_length)
                           : tokenizer->encode(a, b, max_length);
  if (truncated) *truncated += enc.num_truncated;
  return {std::move(enc.input_ids), std::move(enc.token_type_ids)};
}

torch::nn::Module& TextModel::module() const {
  if (bert) return *bert.ptr();
  if (textcnn) return *textcnn.ptr();
  if (use_lite) return *use_lite.ptr();  // [use-lite]
  return *tfidf_head.ptr();
}

namespace {

// Rows [N, width] of `inputs` from `rows_of` (the positions of one batch),
// in eval mode, batched by length (one bucket over everything).
torch::Tensor text_rows(const TextModel& m, const std::vector<EncodedText>& inputs, int64_t batch_size,
                        int64_t width, const std::function<torch::Tensor(const std::vector<int64_t>&)>& rows_of,
                        const std::string& progress_label = "") {
  torch::InferenceMode guard;
  const int64_t n = static_cast<int64_t>(inputs.size());
  torch::Tensor out = torch::zeros({n, width});
  if (n == 0) return out;
  m.module().eval();
  std::vector<size_t> order(inputs.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<int64_t> lengths;
  for (const auto& e : inputs) lengths.push_back(static_cast<int64_t>(e.ids.size()));
  std::unique_ptr<Progress> progress;
  if (!progress_label.empty()) progress = std::make_unique<Progress>(progress_label, n);
  for (const auto& batch : length_batches(order, lengths, batch_size, n)) {
    out.index_copy_(0, torch::tensor(batch, torch::kInt64), rows_of(batch).to(torch::kFloat32));
    if (progress) progress->advance(static_cast<int64_t>(batch.size()));
  }
  if (progress) progress->finish();
  return out;
}

}  // namespace

torch::Tensor TextModel::features(const std::vector<EncodedText>& inputs, int64_t batch_size,
                                  const std::string& progress) const {
  if (textcnn)  // textcnn: the pooled maxima
    return text_rows(*this, inputs, batch_size, textcnn->feature_dim(), [&](const std::vector<int64_t>& batch) {
      std::vector<const EncodedText*> items;
      for (int64_t i : batch) items.push_back(&inputs[static_cast<size_t>(i)]);
      return textcnn.ptr()->features(collate_word_ids(items, textcnn->config.widths.back()));
    }, progress);
  if (use_lite)  // [use-lite]
    return text_rows(*this, inputs, batch_size, info.use_lite.width1, [&](const std::vector<int64_t>& batch) {
      std::vector<const EncodedText*> items;
      for (int64_t i : batch) items.push_back(&inputs[static_cast<size_t>(i)]);
      TextBatch b = collate_texts(items, 0);
      return use_lite.ptr()->features(b.input_ids, b.attention_mask);
    }, progress);
  GRAFT_CHECK(bert, "text features: a tfidf model has no BERT features");
  return text_rows(*this, inputs, batch_size, info.bert.hidden_size, [&](const std::vector<int64_t>& batch) {
    std::vector<const EncodedText*> items;
    for (int64_t i : batch) items.push_back(&inputs[static_cast<size_t>(i)]);
    return bert.ptr()->features(collate_texts(items, tokenizer->pad_id()));
  }, progress);
}

torch::Tensor TextModel::logits(const std::vector<EncodedText>& inputs, int64_t batch_size) const {
  const int64_t classes = static_cast<int64_t>(info.classes.size());
  return text_rows(*this, inputs, batch_size, classes, [&](const std::vector<int64_t>& batch) {
    torch::Tensor z;
    if (textcnn) {
      std::vector<const EncodedText*> items;
      for (int64_t i : batch) items.push_back(&inputs[static_cast<size_t>(i)]);
      z = textcnn.ptr()->forward(collate_word_ids(items, textcnn->config.widths.back()));
    } else if (bert) {
      std::vector<const EncodedText*> items;
      for (int64_t i : batch) items.push_back(&inputs[static_cast<size_t>(i)]);
      z = bert.ptr()->forward(collate_texts(items, tokenizer->pad_id()));
    } else if (use_lite) {  // [use-lite]
      std::vector<const EncodedText*> items;
      for (int64_t i : batch) items.push_back(&inputs[static_cast<size_t>(i)]);
      TextBatch b = collate_texts(items, 0);
      z = use_lite.ptr()->forward(b.input_ids, b.attention_mask);
    } else {
      std::vector<std::vector<int64_t>> docs;
      for (int64_t i : batch) docs.push_back(tfidf_tokens(inputs[static_cast<size_t>(i)]));
      SparseRows sr = tfidf->transform(docs);
      std::vector<int64_t> all(docs.size());
      std::iota(all.begin(), all.end(), 0);
      auto [idx, offs, w] = sr.select(all);
      z = tfidf_head.ptr()->forward(idx, offs, w);
    }
    return z;
  });
}

namespace {

nlohmann::ordered_json info_json(const TextModelInfo& i) {
  nlohmann::ordered_json j;
  j["format"] = "graft-model";
  j["format_version"] = 1;
  j["graft_version"] = GRAFT_VERSION;
  j["task"] = "text";
  j["architecture"] = i.architecture;
  j["backbone"] = i.backbone;
  j["classes"] = i.classes;
  j["max_length"] = i.max_length;
  j["lower_case"] = i.lower_case;
  j["pairs"] = i.pairs;
  j["source_weights"] = i.source_weights;
  // Only when not Hugging Face's linear classifier (runs saved before
  // centroid heads existed have no "head": linear).
  if (i.head != "linear") j["head"] = i.head;
  j["vocab"] = i.architecture == "use-lite" ? "vocab.json" : "vocab.txt";  // [use-lite]
  if (i.architecture == "bert") {
    j["bert"] = to_json(i.bert);
    j["classifier_dropout"] = i.classifier_dropout;
  } else if (i.architecture == "textcnn") {
    j["textcnn"] = to_json(i.textcnn);
  } else if (i.architecture == "use-lite") {  // [use-lite]
    j["use_lite"] = to_json(i.use_lite);
    j["classifier_dropout"] = i.classifier_dropout;
  } else {
    j["tfidf"] = "tfidf.txt";
  }
  return j;
}

}  // namespace

void save_text_model(const std::string& dir, const TextModel& model) {
  const TextModelInfo& i = model.info;
  if (i.architecture == "bert") {
    auto hf = to_json(i.bert);
    hf["architectures"] = {"BertForSequenceClassification"};
    nlohmann::ordered_json id2label, label2id;
    for (size_t c = 0; c < i.classes.size(); ++c) {
      id2label[std::to_string(c)] = i.classes[c];
      label2id[i.classes[c]] = c;
    }
    hf["id2label"] = id2label;
    hf["label2id"] = label2id;
    hf["classifier_dropout"] = i.classifier_dropout;
    write_file_atomic(dir + "/bert_config.json", hf.dump(2) + "\n");
  } else if (i.architecture == "textcnn") {
    // textcnn: everything is in model.json and vocab.txt
  } else if (i.architecture == "use-lite") {  // [use-lite] nothing beside model.json and vocab.json
  } else {
    write_file_atomic(dir + "/tfidf.txt", model.tfidf->to_text());
  }
  // The description first, the weights last (as save_model).
  write_text_model_json(dir, i);
  std::map<std::string, std::string> meta;
  if (i.head == "centroid") meta[kWeightClassesKey] = nlohmann::json(i.classes).dump();
  save_safetensors(dir + "/model.safetensors", state_dict(model.module()), meta);
}

void write_text_model_json(const std::string& dir, const TextModelInfo& info) {
  write_file_atomic(dir + "/model.json", info_json(info).dump(2) + "\n");
}

std::string saved_model_task(const std::string& dir) {
  const std::string path = dir + "/model.json";
  if (!fs::exists(path) && fs::exists(dir + "/face_model.json")) return "face";
  GRAFT_CHECK(fs::exists(path), "'", dir, "' has no model.json (expected a folder written by graft train)");
  const nlohmann::json j = read_json_file(path);
  if (j.is_object() && j.contains("task") && j["task"].is_string()) return j["task"].get<std::string>();
  return "image";
}

void use_text_precision(TextModel& model, Precision precision, const std::string& run, const char* what) {
  if (precision == Precision::kFp32) return;
  if (precision == Precision::kInt8 && model.bert) {
    model.bert->bert->set_dynamic_int8(true);
    return;
  }
  log_warn(str_cat("--precision ", precision_name(precision), " on text run '", run, "': ",
                   precision == Precision::kInt8 ? "dynamic int8 is for BERT runs" : "bf16 is for image runs",
                   "; it is ", what, " in fp32"));
}

TextModel load_text_model(const std::string& dir) {
  const std::string path = dir + "/model.json";
  GRAFT_CHECK(saved_model_task(dir) == "text", "'", path, "' is not a text model (task '",
              saved_model_task(dir), "', expected 'text')");
  nlohmann::json j = read_json_file(path);
  TextModel m;
  TextModelInfo& i = m.info;
  try {
    i.architecture = j.at("architecture").get<std::string>();
    i.backbone = j.value("backbone", i.architecture);
    i.classes = j.at("classes").get<std::vector<std::string>>();
    i.max_length = j.at("max_length").get<int64_t>();
    i.lower_case = j.at("lower_case").get<bool>();
    i.pairs = j.value("pairs", false);
    i.source_weights = j.value("source_weights", "");
    i.head = j.value("head", "linear");
    if (i.architecture == "bert") {
      i.bert = bert_config_from_json(j.at("bert"), "'" + path + "' (bert)");
      i.classifier_dropout = j.value("classifier_dropout", i.bert.hidden_dropout_prob);
    }
    if (i.architecture == "textcnn") i.textcnn = textcnn_config_from_json(j.at("textcnn"), "'" + path + "' (textcnn)");
    if (i.architecture == "use-lite") {  // [use-lite]
      i.use_lite = use_lite_config_from_json(j.at("use_lite"), "'" + path + "' (use_lite)");
      i.classifier_dropout = j.value("classifier_dropout", 0.1);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat("'", path, "': ", e.what(), " (expected the model.json of a text run)"));
  }
  GRAFT_CHECK(i.architecture == "bert" || i.architecture == "tfidf" || i.architecture == "textcnn" ||
                  i.architecture == "use-lite",
              "'", path, "': architecture '", i.architecture, "' (expected bert, tfidf, textcnn or use-lite)");
  GRAFT_CHECK(!i.classes.empty(), "'", path, "' lists no classes");
  GRAFT_CHECK(i.head == "linear" || (i.head == "centroid" && i.architecture == "bert"), "'", path, "': head '",
              i.head, "' (expected linear, or centroid with architecture bert)");
  if (i.architecture == "textcnn") {  // textcnn: a word vocabulary, not WordPiece
    m.words = std::make_shared<WordVocab>(WordVocab::from_text(read_file(dir + "/vocab.txt"), dir + "/vocab.txt"));
    GRAFT_CHECK(m.words->size() == i.textcnn.vocab_size, "'", path, "': vocab_size ", i.textcnn.vocab_size, " but '",
                dir, "/vocab.txt' has ", m.words->size(), " words");
  } else if (i.architecture == "use-lite") {  // [use-lite]
    m.use_tokenizer = std::make_shared<UseLiteTokenizer>(UseLiteTokenizer::from_file(dir + "/vocab.json"));
  } else {
    WordPieceOptions wo;
    wo.lower_case = i.lower_case;
    m.tokenizer = std::make_shared<WordPiece>(WordPiece::from_file(dir + "/vocab.txt", wo));
  }
  GRAFT_CHECK(fs::exists(dir + "/model.safetensors"), "'", dir,
              "' holds no trained model: model.safetensors is missing");
  SafetensorsFile weights = load_safetensors(dir + "/model.safetensors");
  // A centroid run's weights name its classes (graft enroll writes them first).
  if (auto named = weight_file_classes(weights.metadata, dir + "/model.safetensors")) i.classes = *named;
  const TensorList& tensors = weights.tensors;
  const int64_t classes = static_cast<int64_t>(i.classes.size());
  if (i.architecture == "textcnn") {
    m.textcnn = TextCnn(i.textcnn, classes);
    LoadReport r = load_state_dict(*m.textcnn, tensors);
    GRAFT_CHECK(r.clean(), "'", dir, "/model.safetensors' does not match its model.json: ", r.summary());
  } else if (i.architecture == "bert") {
    GRAFT_CHECK(i.bert.vocab_size == static_cast<int64_t>(m.tokenizer->size()), "'", path,
                "': vocab_size ", i.bert.vocab_size, " but '", dir, "/vocab.txt' has ",
                m.tokenizer->size(), " tokens");
    m.bert = BertClassifier(i.bert, classes, i.classifier_dropout, i.head);
    LoadReport r = load_state_dict(*m.bert, tensors);
    GRAFT_CHECK(r.clean(), "'", dir, "/model.safetensors' does not match its model.json: ", r.summary());
  } else if (i.architecture == "use-lite") {  // [use-lite]
    m.use_lite = UseLiteClassifier(i.use_lite, classes, i.classifier_dropout);
    LoadReport r = load_state_dict(*m.use_lite, tensors);
    GRAFT_CHECK(r.clean(), "'", dir, "/model.safetensors' does not match its model.json: ", r.summary());
  } else {
    m.tfidf = std::make_shared<Tfidf>(Tfidf::from_text(read_file(dir + "/tfidf.txt"), dir + "/tfidf.txt"));
    m.tfidf_head = TfidfClassifier(m.tfidf->size(), classes);
    LoadReport r = load_state_dict(*m.tfidf_head, tensors);
    GRAFT_CHECK(r.clean(), "'", dir, "/model.safetensors' does not match its tfidf.txt: ", r.summary());
  }
  m.module().eval();
  return m;
}

}  // namespace graft
