#pragma once
/// The face pipeline every face verb uses: find the face (face-api's SSD or
/// OpenCV's Haar cascade, or the whole image with --no-detect), its 68
/// landmarks (face-api's landmark net on the face crop, as face-api does), the aligned 150x150 chip (align_face) and the L2-normalised
/// 128-d embedding (face-api's recognition net). Enrolment, identification,
/// verification, evaluation and training all call FacePipeline, so they see
/// the same crops.

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include "graft/data/image_header.h"
#include "graft/face/align.h"
#include "graft/face/detector.h"
#include "graft/face/nets.h"
#include "graft/models/int8.h"

namespace graft {

struct FaceOptions {
  /// Folder of face-api's TF.js models ("" = default_face_models_dir()).
  std::string models_dir;
  /// false (--no-detect): each image is one already-cropped face; landmarks
  /// run on the whole image.
  bool detect = true;
  /// "ssd": face-api's SSD MobileNet v1 (detector.h); "haar": OpenCV's Haar
  /// cascade, the fallback without the SSD model.
  std::string detector = "ssd";
  /// Smallest face side (pixels) kept.
  int min_face = 40;
  /// The SSD's minimum score (face-api's default 0.5).
  double min_confidence = 0.5;
  /// OpenCV Haar cascade file ("" = Debian opencv-data's frontal face cascade).
  std::string cascade;
  /// A run folder of `graft train --task face` whose embedder to use ("" =
  /// face-api's pretrained one). A run with --finetune holds the fine-tuned
  /// weights (embedder.safetensors, checked against the sha256 recorded in its
  /// face_model.json); a run without uses the pretrained embedder it was
  /// trained on (face-api's, or MobileFaceNet for a run of `graft train
  /// --task face --embedder mobilefacenet`: FacePipeline reads which from the
  /// run and refuses an embedder_name of the other one).
  std::string embedder_run;
  /// The pretrained embedder by name (issue 18): "" or kFaceEmbedderName
  /// (face-api's dlib-style ResNet, 150x150 dlib chips, 128-d) or
  /// kMobileFaceNetName (MobileFaceNet, ArcFace 112x112 chips, 192-d; see
  /// face/mobilefacenet.h). Set from --embedder by set_face_embedder.
  std::string embedder_name;
  /// MobileFaceNet's folder ("" = default_mobilefacenet_dir()).
  std::string mobilefacenet_dir;
  /// The embedder's arithmetic (--precision): "fp32", "bf16" (bfloat16
  /// autocast, as for image models; descriptors come back float32), or
  /// "int8" (face-api's embedder only: post-training static int8 as
  /// models/int8.h's build_face_int8, calibrated when the pipeline is made).
  std::string precision = "fp32";
  /// int8: the folder of face images to calibrate on (one sub-folder per
  /// identity, or images; searched recursively) and how many of its faces,
  /// drawn in a seeded order (the largest face of each image, found and
  /// aligned as every other face).
  std::string calibration_data;
  int64_t calibration = 256;
  /// Where a face run keeps its int8 calibration ("" = nowhere: each
  /// pipeline calibrates again). Reused while the embedder's weights, the
  /// calibration data, N and the detection setting are the same.
  std::string int8_calibration_file;
};

/// The names --embedder takes (the rest is a run folder): "dlib" and
/// kFaceEmbedderName for face-api's net, "mobilefacenet" and
/// kMobileFaceNetName for MobileFaceNet.
std::vector<std::string> face_embedder_names();

/// Sets `o` from an --embedder value: a name of face_embedder_names() picks
/// that pretrained embedder (a name wins over a folder of the same name:
/// write ./mobilefacenet for such a folder); anything else must be a run
/// folder of `graft train --task face` (holding face_model.json), else a
/// UsageError lists the valid names. "" leaves the default.
void set_face_embedder(FaceOptions& o, const std::string& value);

/// One face: its box in the image, landmarks (image pixels) and aligned chip.
struct Face {
  cv::Rect box;
  std::vector<cv::Point2f> landmarks;
  cv::Mat chip;
};

/// Seconds spent per stage and the counts they cover (for time per image).
struct FaceTimes {
  double decode = 0, detect = 0, landmarks = 0, align = 0, embed = 0;
  int64_t images = 0, faces = 0;
};

/// The name graft records for the embedder in galleries and run folders.
inline constexpr const char* kFaceEmbedderName = "face-api-1.7.15/face_recognition_model";

class MobileFaceNet;

class FacePipeline {
 public:
  /// Loads the landmark and recognition nets (and the cascade when detecting).
  /// Throws graft::Error naming what is missing.
  explicit FacePipeline(FaceOptions options);
  ~FacePipeline();

  /// The faces of an 8-bit grey or RGB image, largest first (one, the whole
  /// image, with detect off). Empty when the detector finds none. Throws
  /// graft::Error naming `name` for an image too small to hold a face.
  std::vector<Face> faces(const cv::Mat& image, const std::string& name);

  /// L2-normalised embeddings [N, embedding_dim()] of aligned chips (a batch
  /// at a time): 150x150 dlib chips, or 112x112 ArcFace chips for MobileFaceNet.
  torch::Tensor embed(const std::vector<cv::Mat>& chips);

  /// Reads an image file (load_image; timed as decoding).
  cv::Mat load(const std::string& path);

  /// Reads an image file and returns the embedding [128] of its largest face.
  /// Throws graft::Error naming the file when it is not an image or has no face.
  torch::Tensor embed_file(const std::string& path);

  /// The embedder's name and weights hash, as galleries and runs record them:
  /// kFaceEmbedderName and the sha256 of face-api's manifest and shards, or
  /// for a fine-tuned embedder (FaceOptions::embedder_run) the name and the
  /// sha256 of embedder.safetensors that its run recorded.
  const std::string& embedder_name() const { return name_; }
  const std::string& embedder_sha256() const { return sha256_; }
  /// The recognition net (fine-tuning changes it in place; then set_embedder
  /// names the result).
  /// Throws graft::Error for MobileFaceNet (it is not fine-tuned or exported).
  FaceEmbedder& embedder();
  void set_embedder_identity(std::string name, std::string sha256) {
    name_ = std::move(name);
    sha256_ = std::move(sha256);
  }
  const FaceOptions& options() const { return options_; }
  /// 128 (face-api's net, pretrained or fine-tuned) or 192 (MobileFaceNet).
  int64_t embedding_dim() const;
  bool is_mobilefacenet() const { return static_cast<bool>(mfn_); }
  const FaceTimes& times() const { return times_; }
  /// The int8 calibration in use (nullptr unless --precision int8).
  const Int8Calibration* int8_calibration() const { return int8_ ? &int8_calibration_ : nullptr; }

 private:
  void load_run_embedder();
  void calibrate_int8();
  FaceOptions options_;
  FaceLandmarkNet landmarks_{nullptr};
  FaceEmbedder embedder_{nullptr};
  std::string name_, sha256_;
  struct Detector;
  std::unique_ptr<Detector> detector_;
  FaceDetectorNet ssd_{nullptr};
  FaceTimes times_;
  Int8Calibration int8_calibration_;
  std::shared_ptr<Int8Network> int8_;
  std::unique_ptr<MobileFaceNet> mfn_;
};

/// A folder with one sub-folder per identity, embedded. Every regular file
/// (hidden ones aside) is tried; a file that is not a readable image or has
/// no face is listed in `skipped` as "PATH: reason" instead of failing, and
/// counted: unreadable files with their reason, images without a face per
/// identity.
struct FaceFolder {
  std::vector<std::string> identities;        // sorted folder names
  std::vector<std::string> paths;             // embedded files
  std::vector<int64_t> labels;                // index into identities, per path
  torch::Tensor embeddings;                   // [paths.size(), 128], L2-normalised
  std::vector<std::string> skipped;           // "PATH: reason"
  std::vector<std::string> empty_identities;  // folders that gave no face
  std::vector<UnreadableImage> unreadable;    // files not read as images (label: identity)
  std::vector<int64_t> files;                 // per identity: files tried
  std::vector<int64_t> faceless;              // per identity: images read that gave no usable face
};

/// Embeds `dir` (largest face per image). Throws graft::Error naming `dir`
/// when it is not a folder or has no identity sub-folder. With `chips`, also
/// returns the aligned chip of every embedded path (same order).
FaceFolder embed_face_folder(FacePipeline& pipeline, const std::string& dir,
                             std::vector<cv::Mat>* chips = nullptr);

/// Why an identity of `folder` (read from `dir`) gave no face, for errors and
/// warnings: it holds no files; none of its N files could be read (with the
/// reasons); or N images were read and no face was found in any (with the
/// detector settings). Never "no face" for images that were never read.
std::string empty_identity_reason(const FaceFolder& folder, const std::string& identity, const std::string& dir,
                                  const FaceOptions& options);

/// Warnings for a run over `folder`: the first 20 skipped files, then the
/// unreadable files counted by reason and identity, and the images without a
/// usable face per identity (those two left to check_face_folder_usable's
/// error when the folder gave no face at all).
void report_face_folder(const FaceFolder& folder, const std::string& dir, const FaceOptions& options);

/// Throws graft::Error when `folder` gave no face at all, saying why: no
/// files, "0 of N files could be read: ..." (with the reasons), or no face
/// found in any of the images read. Call before computing anything on it.
void check_face_folder_usable(const FaceFolder& folder, const std::string& dir, const FaceOptions& options);

/// What enroll_gallery did.
struct GalleryEnrolment {
  int enrolled = 0;        // identities added or replaced
  size_t images = 0;       // images embedded
  size_t skipped = 0;      // files left out (unreadable, no face)
  size_t identities = 0;   // identities in the gallery afterwards
};

/// graft face enroll: every identity sub-folder of `dir` with a face becomes
/// an identity of the gallery file `gallery` (its mean embedding; an
/// identity of the same name is replaced). The gallery is created, or read
/// and checked against the pipeline's embedder and detection setting, then
/// written atomically. Throws graft::Error when `dir` gave no face (the
/// gallery left as it was).
GalleryEnrolment enroll_gallery(FacePipeline& pipeline, const std::string& gallery, const std::string& dir);

/// The file name of a fine-tuned embedder in a face run folder.
inline constexpr const char* kFaceEmbedderFile = "embedder.safetensors";

}  // namespace graft
