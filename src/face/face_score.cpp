#include "graft/face/face_score.h"

#include <chrono>

#include "graft/core/error.h"
#include "graft/select/transferability.h"

namespace graft {

namespace {
constexpr const char* kFaceCandidatePrefix = "face:";
}  // namespace

bool is_face_candidate(const std::string& spec) { return spec.rfind(kFaceCandidatePrefix, 0) == 0; }

std::vector<CandidateScore> score_face_embedders(const std::string& data, const std::vector<std::string>& specs,
                                                 const FaceOptions& base) {
  std::vector<FaceOptions> options;
  for (const auto& spec : specs) {  // every name checked before any work
    GRAFT_CHECK(is_face_candidate(spec), "--backbones: ", spec, " is not a face:NAME candidate");
    const std::string name = spec.substr(std::string(kFaceCandidatePrefix).size());
    bool known = false;
    for (const auto& n : face_embedder_names()) known = known || n == name;
    if (!known) {
      std::string names;
      for (const auto& n : face_embedder_names()) names += (names.empty() ? "" : ", ") + n;
      throw UsageError(str_cat("--backbones: ", spec, ": \"", name, "\" is not a face embedder (expected face: with one of: ",
                               names, ")"));
    }
    FaceOptions o = base;
    set_face_embedder(o, name);
    options.push_back(o);
  }
  std::vector<CandidateScore> out;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    FacePipeline pipeline(options[i]);
    const FaceFolder folder = embed_face_folder(pipeline, data);
    report_face_folder(folder, data, pipeline.options());
    check_face_folder_usable(folder, data, pipeline.options());
    const auto labels = torch::tensor(folder.labels, torch::kInt64);
    CandidateScore s;
    s.candidate = specs[i];
    s.backbone = pipeline.embedder_name();
    s.weights = pipeline.embedder_sha256();
    s.feature_dim = folder.embeddings.size(1);
    s.logme = logme(folder.embeddings, labels);
    s.h_score = h_score(folder.embeddings, labels);
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(s);
  }
  return out;
}

}  // namespace graft
