#include "graft/eval/infer.h"

#include <cstdlib>
#include <filesystem>
#include <list>
#include <map>
#include <unordered_map>
#include <mutex>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/data/loader.h"
#include "graft/models/fast.h"
#include "graft/weights/safetensors.h"

namespace graft {

Outputs infer(BackboneImpl& model, const ImageSet& set, const InputSpec& spec,
              const InferOptions& options, bool features, Tta tta) {
  GRAFT_CHECK(options.precision != Precision::kInt8 || model.int8(), options.label,
              ": --precision int8 is not available here (no int8 network was prepared for this model)");
  bool was_training = model.is_training();
  model.eval();
  torch::InferenceMode guard;
  // The fast path for evaluation: NHWC layout, BatchNorm folded into the
  // convolutions, and bf16 autocast when asked for.
  to_channels_last(model);
  FoldedBatchNorm fold(model);
  LoaderOptions lo;
  const int64_t views = tta_views(tta);
  lo.batch_size = tta == Tta::None ? options.batch_size : std::max<int64_t>(1, options.batch_size / views);
  lo.tta = tta;
  lo.workers = options.workers;
  lo.strict = options.strict;
  Loader loader(set, spec, lo);
  Progress progress(options.label, static_cast<int64_t>(set.size()));
  std::vector<torch::Tensor> values, labels;
  Outputs out;
  while (auto batch = loader.next()) {
    torch::Tensor images = batch->images;
    if (tta != Tta::None) images = images.flatten(0, 1);  // [B, V, C, H, W] -> [B*V, C, H, W]
    torch::Tensor x = channels_last(images.to(options.device));
    torch::Tensor y;
    {
      Autocast autocast(options.precision);
      y = features ? model.features(x) : model.forward(x);
    }
    if (tta != Tta::None) y = y.unflatten(0, {batch->images.size(0), views});
    values.push_back(y.to(torch::kCPU, torch::kFloat32));
    labels.push_back(batch->labels);
    out.positions.insert(out.positions.end(), batch->positions.begin(), batch->positions.end());
    progress.advance(static_cast<int64_t>(batch->positions.size()));
  }
  progress.finish();
  model.train(was_training);
  out.unreadable = loader.failures();
  GRAFT_CHECK(!values.empty(), "image set '", set.root, "': ",
              out.unreadable.empty() ? "it holds no image"
                                     : unreadable_summary(out.unreadable, static_cast<int64_t>(set.size()),
                                                          set.classes, "images"));
  out.values = torch::cat(values);
  out.labels = torch::cat(labels);
  return out;
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("GRAFT_CACHE_DIR"); d && *d) return std::string(d) + "/features";
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return std::string(d) + "/graft/features";
  if (const char* d = std::getenv("HOME"); d && *d) return std::string(d) + "/.cache/graft/features";
  return ".graft-cache/features";
}

namespace {

// The in-memory feature cache: least recently used first out, bounded in
// bytes (set_feature_cache_limit_mb), so that a process that computes
// features of many models (graft search's trials in one process) does not
// grow without bound. The disk cache keeps everything.
class MemoryFeatureCache {
 public:
  std::optional<Outputs> get(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second.where);  // most recent first
    return it->second.out;
  }
  void put(const std::string& key, const Outputs& out) {
    erase(key);
    const int64_t bytes = footprint(out);
    if (bytes > limit_) return;  // larger than the whole cache: disk only
    order_.push_front(key);
    entries_.emplace(key, Entry{out, bytes, order_.begin()});
    bytes_ += bytes;
    trim();
  }
  void set_limit(int64_t bytes) {
    limit_ = bytes;
    trim();
  }
  int64_t bytes() const { return bytes_; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Outputs out;
    int64_t bytes;
    std::list<std::string>::iterator where;
  };
  static int64_t footprint(const Outputs& o) {
    int64_t n = static_cast<int64_t>(o.positions.size() * sizeof(size_t));
    for (const auto* t : {&o.values, &o.labels})
      if (t->defined()) n += static_cast<int64_t>(t->nbytes());
    return n;
  }
  void erase(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    bytes_ -= it->second.bytes;
    order_.erase(it->second.where);
    entries_.erase(it);
  }
  void trim() {
    while (bytes_ > limit_ && !order_.empty()) erase(order_.back());
  }
  std::list<std::string> order_;
  std::unordered_map<std::string, Entry> entries_;
  int64_t bytes_ = 0;
  int64_t limit_ = kDefaultFeatureCacheMb << 20;
};

std::mutex g_cache_mutex;
MemoryFeatureCache& memory_cache() {
  static MemoryFeatureCache cache;
  return cache;
}

}  // namespace

namespace {

std::string feature_key(const std::string& model_key, const ImageSet& set, const InputSpec& spec) {
  std::string material = str_cat("graft-features-v1\n", model_key, "\n", spec.size, " ",
                                 spec.resize, " ", spec.channels);
  for (int c = 0; c < 3; ++c) material += str_cat(" ", spec.mean[c], " ", spec.std[c]);
  material += "\n";
  for (size_t i = 0; i < set.size(); ++i)
    material += str_cat(set.identity(i), "\t", set.samples[i].label, "\n");
  return sha256_hex(material);
}

std::string feature_path(const std::string& key, const std::string& cache_dir) {
  return cache_dir.empty() ? "" : cache_dir + "/" + key + ".safetensors";
}

}  // namespace

std::optional<Outputs> find_cached_features(const std::string& model_key, const ImageSet& set,
                                            const InputSpec& spec, const std::string& cache_dir) {
  const std::string key = feature_key(model_key, set, spec);
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    if (auto hit = memory_cache().get(key)) return hit;
  }
  const std::string path = feature_path(key, cache_dir);
  if (path.empty() || !std::filesystem::exists(path)) return std::nullopt;
  Outputs out;
  try {
    SafetensorsFile f = load_safetensors(path);
    std::map<std::string, torch::Tensor> t(f.tensors.begin(), f.tensors.end());
    out.values = t.at("features");
    out.labels = t.at("labels");
    auto pos = t.at("positions");
    for (int64_t i = 0; i < pos.size(0); ++i) out.positions.push_back(pos[i].item<int64_t>());
  } catch (const std::exception& e) {
    log_warn(str_cat("feature cache '", path, "' is unreadable (", e.what(), "); recomputing"));
    return std::nullopt;
  }
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  memory_cache().put(key, out);
  return out;
}

void store_cached_features(const std::string& model_key, const ImageSet& set,
                           const InputSpec& spec, const std::string& cache_dir, const Outputs& out) {
  const std::string key = feature_key(model_key, set, spec);
  const std::string path = feature_path(key, cache_dir);
  if (!path.empty()) {
    make_dirs(cache_dir);
    std::vector<int64_t> pos(out.positions.begin(), out.positions.end());
    save_safetensors(path, {{"features", out.values},
                            {"labels", out.labels},
                            {"positions", torch::tensor(pos, torch::kInt64)}});
  }
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  memory_cache().put(key, out);
}

void set_feature_cache_limit_mb(int64_t mb) {
  GRAFT_CHECK_USAGE(mb >= 0, "--cache-mb: ", mb, " (expected 0 or more MiB)");
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  memory_cache().set_limit(mb << 20);
}

std::pair<int64_t, int64_t> feature_cache_usage() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  return {static_cast<int64_t>(memory_cache().size()), memory_cache().bytes()};
}

Outputs cached_features(BackboneImpl& model, const std::string& model_key, const ImageSet& set,
                        const InputSpec& spec, const InferOptions& options,
                        const std::string& cache_dir) {
  if (auto hit = find_cached_features(model_key, set, spec, cache_dir)) return *hit;
  Outputs out = infer(model, set, spec, options, /*features=*/true);
  store_cached_features(model_key, set, spec, cache_dir, out);
  return out;
}

}  // namespace graft
