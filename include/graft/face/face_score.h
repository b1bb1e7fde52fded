#pragma once
/// graft score on a face target (issue 18): the candidates "face:NAME"
/// (NAME an --embedder name: dlib, mobilefacenet) are scored by LogME and
/// H-score on the L2-normalised embeddings of the target's identity folders,
/// each photo's largest face aligned as that embedder wants
/// (embed_face_folder). No source classifier, so no LEEP or NCE; no
/// --source-data similarity.

#include <string>
#include <vector>

#include "graft/face/pipeline.h"
#include "graft/select/score.h"

namespace graft {

/// True for a "face:NAME" candidate.
bool is_face_candidate(const std::string& spec);

/// Scores each "face:NAME" candidate of `specs` on the identity folders of
/// `data` with the pipeline options `base` (detection, models). Throws
/// graft::UsageError for an unknown NAME (listing the valid ones) and
/// graft::Error when `data` gives no face.
std::vector<CandidateScore> score_face_embedders(const std::string& data, const std::vector<std::string>& specs,
                                                 const FaceOptions& base);

}  // namespace graft
