#include "graft/face/gallery.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/face/mobilefacenet.h"
#include "graft/face/pipeline.h"

namespace graft {

namespace {
constexpr const char* kFormat = "graft-face-gallery";
constexpr int kVersion = 1;
}  // namespace

Gallery read_gallery(const std::string& path) {
  GRAFT_CHECK(std::filesystem::exists(path), "gallery ", path, " does not exist (make it with graft face enroll)");
  const auto j = read_json_file(path);
  GRAFT_CHECK(j.is_object(), "gallery ", path, ": not a JSON object");
  GRAFT_CHECK(j.value("format", "") == kFormat, "gallery ", path, ": format \"", j.value("format", ""),
              "\", expected \"", kFormat, "\"");
  GRAFT_CHECK(j.value("version", 0) == kVersion, "gallery ", path, ": version ", j.value("version", 0),
              ", expected ", kVersion);
  Gallery g;
  try {
    g.embedder = j.at("embedder").get<std::string>();
    g.weights_sha256 = j.at("weights_sha256").get<std::string>();
    g.detect = j.at("detect").get<bool>();
    g.threshold = j.at("threshold").get<double>();
    g.threshold_source = j.at("threshold_source").get<std::string>();
    for (const auto& ji : j.at("identities")) {
      GalleryIdentity id;
      id.name = ji.at("name").get<std::string>();
      id.mean = ji.at("mean").get<std::vector<float>>();
      for (const auto& im : ji.at("images"))
        id.images.push_back({im.at("path").get<std::string>(), im.at("embedding").get<std::vector<float>>()});
      g.identities.push_back(std::move(id));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat("gallery ", path, ": ", e.what()));
  }
  // Every vector must be one the embedder could have made: a hand-edited or
  // mixed gallery would otherwise fail later, far from its file, or grow
  // into a gallery of mixed sizes on enrolment.
  const int64_t dim = gallery_embedding_dim(g.embedder);
  auto check_vector = [&](const std::vector<float>& v, const std::string& what) {
    GRAFT_CHECK(static_cast<int64_t>(v.size()) == dim, "gallery ", path, ": ", what,
                " has ", v.size(), " values (expected ", dim,
                ", the size of its embedder ", g.embedder, ")");
    for (float x : v)
      GRAFT_CHECK(std::isfinite(x), "gallery ", path, ": ", what, " holds a non-finite value");
  };
  for (const auto& id : g.identities) {
    check_vector(id.mean, str_cat("the mean of identity '", id.name, "'"));
    for (const auto& im : id.images)
      check_vector(im.embedding, str_cat("the embedding of '", im.path, "' (identity '", id.name, "')"));
  }
  return g;
}

int64_t gallery_embedding_dim(const std::string& embedder) {
  return embedder == kMobileFaceNetName ? kMobileFaceNetDim : kFaceEmbeddingDim;
}

double default_face_threshold(const std::string& embedder) {
  return embedder == kMobileFaceNetName ? kMobileFaceNetThreshold : kDefaultFaceThreshold;
}

void write_gallery(const std::string& path, const Gallery& g) {
  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kVersion;
  j["embedder"] = g.embedder;
  j["weights_sha256"] = g.weights_sha256;
  j["detect"] = g.detect;
  j["threshold"] = g.threshold;
  j["threshold_source"] = g.threshold_source;
  j["identities"] = nlohmann::ordered_json::array();
  for (const auto& id : g.identities) {
    nlohmann::ordered_json ji;
    ji["name"] = id.name;
    ji["mean"] = id.mean;
    ji["images"] = nlohmann::ordered_json::array();
    for (const auto& im : id.images) ji["images"].push_back({{"path", im.path}, {"embedding", im.embedding}});
    j["identities"].push_back(ji);
  }
  write_file_atomic(path, j.dump() + "\n");
}

void check_gallery_embedder(const Gallery& g, const std::string& path, const std::string& embedder,
                            const std::string& weights_sha256) {
  GRAFT_CHECK(g.embedder == embedder && g.weights_sha256 == weights_sha256, "gallery ", path,
              " was made by embedder \"", g.embedder, "\" with weights sha256 ", g.weights_sha256,
              "; this one is \"", embedder, "\" with weights sha256 ", weights_sha256,
              " (its distances would mean nothing: enrol again into a new gallery",
              g.embedder != embedder && (g.embedder == kMobileFaceNetName || g.embedder == kFaceEmbedderName)
                  ? str_cat(", or use the gallery's embedder: --embedder ",
                            g.embedder == kMobileFaceNetName ? kMobileFaceNetOption : "dlib")
                  : std::string(),
              ")");
}

void update_identity_mean(GalleryIdentity& id) {
  GRAFT_CHECK(!id.images.empty(), "identity ", id.name, " has no images");
  const size_t d = id.images.front().embedding.size();
  std::vector<double> sum(d, 0.0);
  for (const auto& im : id.images) {
    GRAFT_CHECK(im.embedding.size() == d, "identity ", id.name, ": embedding of ", im.path, " has ",
                im.embedding.size(), " values, expected ", d);
    for (size_t i = 0; i < d; ++i) sum[i] += im.embedding[i];
  }
  double norm = 0;
  for (double v : sum) norm += v * v;
  norm = std::max(std::sqrt(norm), 1e-12);
  id.mean.assign(d, 0.0f);
  for (size_t i = 0; i < d; ++i) id.mean[i] = static_cast<float>(sum[i] / norm);
}

std::vector<std::pair<std::string, double>> rank_identities(const Gallery& g, const torch::Tensor& embedding,
                                                            int k) {
  const auto e = embedding.to(torch::kFloat64).contiguous();
  std::vector<std::pair<std::string, double>> out;
  for (const auto& id : g.identities) {
    GRAFT_CHECK(static_cast<int64_t>(id.mean.size()) == e.numel(), "identity ", id.name, ": mean of ",
                id.mean.size(), " values, expected ", e.numel());
    double s = 0;
    const double* p = e.data_ptr<double>();
    for (size_t i = 0; i < id.mean.size(); ++i) s += (p[i] - id.mean[i]) * (p[i] - id.mean[i]);
    out.emplace_back(id.name, std::sqrt(s));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  if (static_cast<int>(out.size()) > k) out.resize(static_cast<size_t>(k));
  return out;
}

}  // namespace graft
