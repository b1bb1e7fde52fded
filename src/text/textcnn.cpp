#include "graft/text/textcnn.h"

#include <algorithm>
#include <map>
#include <random>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/text/glove.h"
#include "graft/text/text_model.h"

namespace graft {

namespace {

bool textcnn_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

bool textcnn_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

}  // namespace

std::vector<std::string> word_tokens(const std::string& raw) {
  std::string s = raw;
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  const size_t n = s.size();
  auto word_at = [&](size_t i) { return i < n && textcnn_word_byte(static_cast<unsigned char>(s[i])); };
  auto nt_at = [&](size_t i) { return s.compare(i, 3, "n't") == 0 && !word_at(i + 3); };
  std::vector<std::string> out;
  size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (textcnn_space(c)) {
      ++i;
      continue;
    }
    if (nt_at(i)) {
      out.emplace_back("n't");
      i += 3;
      continue;
    }
    if (c == '\'') {
      bool clitic = false;
      for (const char* k : {"s", "re", "ve", "ll", "d", "m"}) {
        const size_t len = std::char_traits<char>::length(k);
        if (s.compare(i + 1, len, k) == 0 && !word_at(i + 1 + len)) {
          out.push_back(s.substr(i, len + 1));
          i += len + 1;
          clitic = true;
          break;
        }
      }
      if (clitic) continue;
    }
    if (textcnn_word_byte(c)) {
      size_t j = i;
      while (word_at(j)) ++j;
      // "doesn't": the run "doesn" followed by "'t" -> "does", then "n't".
      if (j - i > 1 && s[j - 1] == 'n' && nt_at(j - 1)) --j;
      out.push_back(s.substr(i, j - i));
      i = j;
      continue;
    }
    out.push_back(s.substr(i, 1));
    ++i;
  }
  return out;
}

WordVocab WordVocab::build(const std::vector<std::vector<std::string>>& texts) {
  std::map<std::string, int64_t> counts;
  for (const auto& t : texts)
    for (const auto& w : t) counts[w] += 1;
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  WordVocab v;
  v.words_ = {"<pad>", "<unk>"};
  for (auto& [w, c] : sorted)
    if (w != "<pad>" && w != "<unk>") v.words_.push_back(w);
  for (size_t i = 0; i < v.words_.size(); ++i) v.index_[v.words_[i]] = static_cast<int64_t>(i);
  return v;
}

WordVocab WordVocab::from_text(const std::string& text, const std::string& source) {
  WordVocab v;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string w = text.substr(start, end - start);
    GRAFT_CHECK(v.index_.emplace(w, static_cast<int64_t>(v.words_.size())).second, "'", source, "' line ",
                v.words_.size() + 1, ": '", w, "' repeats (expected each word once)");
    v.words_.push_back(std::move(w));
    start = end + 1;
  }
  GRAFT_CHECK(v.words_.size() >= 2 && v.words_[0] == "<pad>" && v.words_[1] == "<unk>", "'", source,
              "' does not start with <pad> and <unk> (expected the vocab.txt of a textcnn run)");
  return v;
}

std::string WordVocab::to_text() const {
  std::string out;
  for (const auto& w : words_) out += w + "\n";
  return out;
}

int64_t WordVocab::id(const std::string& w) const {
  auto it = index_.find(w);
  return it == index_.end() ? kUnk : it->second;
}

EncodedText WordVocab::encode(const std::string& text, int64_t max_length, int64_t* truncated) const {
  EncodedText e;
  const std::vector<std::string> tokens = word_tokens(text);
  for (const auto& t : tokens) {
    if (static_cast<int64_t>(e.ids.size()) >= max_length) break;
    e.ids.push_back(id(t));
  }
  if (truncated) *truncated += static_cast<int64_t>(tokens.size()) - static_cast<int64_t>(e.ids.size());
  e.types.assign(e.ids.size(), 0);
  return e;
}

nlohmann::ordered_json to_json(const TextCnnConfig& c) {
  nlohmann::ordered_json j;
  j["vocab_size"] = c.vocab_size;
  j["embedding_dim"] = c.embedding_dim;
  j["maps"] = c.maps;
  j["widths"] = c.widths;
  j["dropout"] = c.dropout;
  j["static_embeddings"] = c.static_embeddings;
  j["embeddings"] = c.embeddings;
  return j;
}

TextCnnConfig textcnn_config_from_json(const nlohmann::json& j, const std::string& source) {
  TextCnnConfig c;
  try {
    c.vocab_size = j.at("vocab_size").get<int64_t>();
    c.embedding_dim = j.at("embedding_dim").get<int64_t>();
    c.maps = j.at("maps").get<int64_t>();
    c.widths = j.at("widths").get<std::vector<int64_t>>();
    c.dropout = j.at("dropout").get<double>();
    c.static_embeddings = j.value("static_embeddings", false);
    c.embeddings = j.value("embeddings", "none");
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(source, ": ", e.what(), " (expected a textcnn config)"));
  }
  bool widths_ok = !c.widths.empty() && c.widths.size() <= 16;
  for (int64_t w : c.widths) widths_ok = widths_ok && w >= 1 && w <= 64;
  GRAFT_CHECK(c.vocab_size >= 2 && c.embedding_dim >= 1 && c.embedding_dim <= 4096 && c.maps >= 1 &&
                  c.maps <= 4096 && widths_ok && c.dropout >= 0 && c.dropout < 1,
              source, ": ", to_json(c).dump(), " (expected vocab_size >= 2, embedding_dim and maps in 1..4096, "
              "1 to 16 widths in 1..64, dropout in [0, 1))");
  return c;
}

torch::Tensor collate_word_ids(const std::vector<const EncodedText*>& items, int64_t min_length) {
  int64_t t = min_length;
  for (const auto* e : items) t = std::max<int64_t>(t, static_cast<int64_t>(e->ids.size()));
  torch::Tensor ids = torch::full({static_cast<int64_t>(items.size()), t}, WordVocab::kPad, torch::kInt64);
  auto a = ids.accessor<int64_t, 2>();
  for (size_t i = 0; i < items.size(); ++i)
    for (size_t j = 0; j < items[i]->ids.size(); ++j) a[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = items[i]->ids[j];
  return ids;
}

TextCnnImpl::TextCnnImpl(const TextCnnConfig& c, int64_t num_classes) : config(c) {
  embedding = register_module(
      "embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.embedding_dim).padding_idx(WordVocab::kPad)));
  convs = register_module("convs", torch::nn::ModuleList());
  for (int64_t w : c.widths) convs->push_back(torch::nn::Conv1d(torch::nn::Conv1dOptions(c.embedding_dim, c.maps, w)));
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  classifier = register_module("classifier", torch::nn::Linear(feature_dim(), num_classes));
}

torch::Tensor TextCnnImpl::features(const torch::Tensor& ids) {
  torch::Tensor x = embedding->forward(ids).transpose(1, 2);  // [B, D, T]
  std::vector<torch::Tensor> pooled;
  for (const auto& m : *convs) pooled.push_back(torch::relu(m->as<torch::nn::Conv1d>()->forward(x)).amax(2));
  return torch::cat(pooled, 1);
}

torch::Tensor TextCnnImpl::forward(const torch::Tensor& ids) { return classifier->forward(dropout->forward(features(ids))); }

EmbeddingInit init_textcnn_embeddings(TextCnnImpl& model, const WordVocab& vocab, const std::string& file,
                                      uint64_t seed) {
  EmbeddingInit r;
  r.file = file;
  r.words = vocab.size() - 2;
  // Kim's U[-0.25, 0.25] for every row, from one seeded generator (the
  // same draws whatever the thread count).
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> u(-0.25f, 0.25f);
  const int64_t d = model.config.embedding_dim;
  torch::Tensor w = torch::empty({vocab.size(), d}, torch::kFloat32);
  float* p = w.data_ptr<float>();
  for (int64_t i = 0; i < w.numel(); ++i) p[i] = u(gen);
  if (file != "none") {
    const WordVectors v = read_word_vectors(file, "--embeddings", d);
    const torch::Tensor rows = v.rows;
    for (int64_t id = 2; id < vocab.size(); ++id) {
      auto it = v.index.find(vocab.word(id));
      if (it == v.index.end()) continue;
      w[id].copy_(rows[it->second]);
      r.found += 1;
    }
  }
  r.oov = file == "none" ? r.words : r.words - r.found;
  w[WordVocab::kPad].zero_();
  torch::NoGradGuard g;
  model.embedding->weight.copy_(w);
  return r;
}

}  // namespace graft
