#pragma once
/// A face gallery: per identity the mean of its L2-normalised embeddings
/// (re-normalised) and the reference images with their embeddings, plus the
/// embedder's name and weights hash (a gallery is refused by other weights)
/// and the decision threshold. Stored as JSON, rewritten atomically.

#include <string>
#include <vector>

#include <torch/torch.h>

namespace graft {

/// Default "same person" threshold on the Euclidean distance between
/// L2-normalised face-api descriptors. dlib's 0.6 on raw descriptors would be
/// about 0.42 after normalisation (their norms are ~1.4), which accepts too
/// many impostors on AT&T faces; there the threshold of best accuracy is 0.40
/// and the one at FAR 1e-3 is 0.36 (bench/RESULTS.md), so 0.38 sits between.
/// `graft face evaluate --gallery G` stores one calibrated on your data.
inline constexpr double kDefaultFaceThreshold = 0.38;
/// The same for MobileFaceNet's L2-normalised 192-d embeddings: on AT&T
/// faces (`--no-detect`, bench/face_embedders.sh, bench/RESULTS.md "the two
/// embedders") the threshold of best accuracy is 0.0108 and the one at FAR
/// 1e-3 is 0.0060, so 0.008 sits between. Its distances are small because
/// every embedding lies close to one common direction (RESULTS says how close).
inline constexpr double kMobileFaceNetThreshold = 0.008;

struct GalleryImage {
  std::string path;
  std::vector<float> embedding;
};

struct GalleryIdentity {
  std::string name;
  std::vector<float> mean;
  std::vector<GalleryImage> images;
};

struct Gallery {
  std::string embedder;
  std::string weights_sha256;
  bool detect = true;
  double threshold = kDefaultFaceThreshold;
  std::string threshold_source = "default";
  std::vector<GalleryIdentity> identities;
};

/// The size of face-api's embeddings (its recognition net, pretrained or
/// fine-tuned).
constexpr int64_t kFaceEmbeddingDim = 128;

/// The size of the embeddings of the gallery's embedder: 192 for
/// MobileFaceNet ("human-models-3.0.4/mobilefacenet", face/mobilefacenet.h),
/// else kFaceEmbeddingDim.
int64_t gallery_embedding_dim(const std::string& embedder);
/// The default "same person" threshold of an embedder (kMobileFaceNetThreshold
/// for MobileFaceNet, else kDefaultFaceThreshold).
double default_face_threshold(const std::string& embedder);

/// Reads a gallery; throws graft::Error naming the file and the field when
/// it is missing, not JSON, or malformed, or when an embedding or mean does
/// not hold gallery_embedding_dim(embedder) finite values.
Gallery read_gallery(const std::string& path);
/// Writes atomically (write_file_atomic): the old file survives any failure.
void write_gallery(const std::string& path, const Gallery& gallery);

/// Throws graft::Error when `gallery` (read from `path`) was made by another
/// embedder or other weights, naming both.
void check_gallery_embedder(const Gallery& gallery, const std::string& path, const std::string& embedder,
                            const std::string& weights_sha256);

/// Sets `identity.mean` from its images' embeddings (mean, re-normalised).
void update_identity_mean(GalleryIdentity& identity);

/// Distance-ranked matches of a normalised embedding [D] against the
/// identities' means: (name, distance), nearest first, at most `k`.
std::vector<std::pair<std::string, double>> rank_identities(const Gallery& gallery,
                                                            const torch::Tensor& embedding, int k);

}  // namespace graft
