#include "graft/face/pipeline.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/progress.h"
#include "graft/data/image_set.h"
#include "graft/data/order.h"
#include "graft/eval/int8_run.h"
#include "graft/face/gallery.h"
#include "graft/face/mobilefacenet.h"
#include "graft/models/fast.h"

namespace graft {

namespace {

constexpr const char* kDefaultCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
constexpr int kMinImageSide = 16;  // smaller than this holds no usable face
constexpr uint64_t kFaceCalibrationSeed = 0;  // as graft eval's int8 calibration draws its images

// Whether `dir` has a sub-folder (not hidden): then it is one per identity.
bool has_sub_folders(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) return false;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && !name.empty() && name[0] != '.') return true;
  }
  return false;
}

// The pretrained embedder a face run was trained on, from its
// face_model.json: MobileFaceNet's name, or face-api's (for its runs, fine-
// tuned ones included). "" when the file is missing or names no embedder
// (load_run_embedder then says what is wrong).
std::string run_base_embedder(const std::string& run) {
  const std::string path = run + "/face_model.json";
  if (!std::filesystem::exists(path)) return "";
  const auto j = read_json_file(path);
  if (!j.is_object() || !j.contains("embedder") || !j["embedder"].is_string()) return "";
  return j["embedder"].get<std::string>() == kMobileFaceNetName ? kMobileFaceNetName : kFaceEmbedderName;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct FacePipeline::Detector {
  cv::CascadeClassifier cascade;
};

std::vector<std::string> face_embedder_names() {
  return {"dlib", kFaceEmbedderName, kMobileFaceNetOption, kMobileFaceNetName};
}

void set_face_embedder(FaceOptions& o, const std::string& value) {
  if (value.empty()) return;
  if (value == "dlib" || value == kFaceEmbedderName) {
    o.embedder_name = kFaceEmbedderName;
    o.embedder_run.clear();
    return;
  }
  if (value == kMobileFaceNetOption || value == kMobileFaceNetName) {
    o.embedder_name = kMobileFaceNetName;
    o.embedder_run.clear();
    return;
  }
  if (!std::filesystem::is_directory(value))
    throw UsageError(str_cat("--embedder: \"", value, "\" is neither an embedder name (expected one of: dlib (",
                             kFaceEmbedderName, ", the default), ", kMobileFaceNetOption, " (", kMobileFaceNetName,
                             ")) nor a run folder of graft train --task face"));
  o.embedder_run = value;
}

FacePipeline::FacePipeline(FaceOptions options) : options_(std::move(options)) {
  GRAFT_CHECK_USAGE(options_.precision == "fp32" || options_.precision == "bf16" || options_.precision == "int8",
                    "--precision ", options_.precision, ": the face embedders run in fp32, bf16 or int8 (expected "
                    "one of them)");
  if (options_.models_dir.empty()) options_.models_dir = default_face_models_dir();
  landmarks_ = load_face_landmark_net(options_.models_dir);
  std::string wanted = options_.embedder_name;
  GRAFT_CHECK(wanted.empty() || wanted == kFaceEmbedderName || wanted == kMobileFaceNetName,
              "face embedder \"", wanted, "\" (expected ", kFaceEmbedderName, " or ", kMobileFaceNetName, ")");
  if (!options_.embedder_run.empty()) {
    // A run is used with the embedder it was trained on (issue 18: face-api's
    // or MobileFaceNet); asking for the other one with it is refused.
    const std::string base = run_base_embedder(options_.embedder_run);
    GRAFT_CHECK(base.empty() || wanted.empty() || wanted == base, "--embedder: the run ", options_.embedder_run,
                " was trained on embedder ", base, ", but ", wanted, " was asked for (a run's head only fits the "
                "embeddings of its own embedder)");
    if (!base.empty()) wanted = options_.embedder_name = base;
  }
  if (wanted == kMobileFaceNetName) {
    if (options_.mobilefacenet_dir.empty()) options_.mobilefacenet_dir = default_mobilefacenet_dir();
    mfn_ = std::make_unique<MobileFaceNet>(options_.mobilefacenet_dir);
    name_ = kMobileFaceNetName;
    sha256_ = mfn_->sha256();
  } else {
    embedder_ = load_face_embedder(options_.models_dir);
    name_ = kFaceEmbedderName;
    sha256_ = face_model_sha256(options_.models_dir, "face_recognition_model");
  }
  if (!options_.embedder_run.empty()) load_run_embedder();
  GRAFT_CHECK_USAGE(options_.precision != "int8" || !mfn_, "--precision int8: ", kMobileFaceNetName,
                    " has no int8 path (face-api's embedder, --embedder dlib, has; MobileFaceNet runs in fp32 "
                    "or bf16)");
  if (options_.detect) {
    GRAFT_CHECK(options_.min_face >= 8, "--min-face: ", options_.min_face, " (expected at least 8 pixels)");
    GRAFT_CHECK(options_.detector == "ssd" || options_.detector == "haar", "--detector: \"", options_.detector,
                "\" (expected ssd or haar)");
    if (options_.detector == "ssd") {
      ssd_ = load_face_detector(options_.models_dir);
    } else {
      const std::string path = options_.cascade.empty() ? kDefaultCascade : options_.cascade;
      GRAFT_CHECK(std::filesystem::exists(path), "face detector: the Haar cascade ", path,
                  " is missing (install Debian's opencv-data, pass --cascade FILE, or --no-detect for "
                  "folders of already-cropped faces)");
      detector_ = std::make_unique<Detector>();
      GRAFT_CHECK(detector_->cascade.load(path), "face detector: ", path, " is not an OpenCV cascade");
    }
  }
  if (options_.precision == "int8") calibrate_int8();
}

FacePipeline::~FacePipeline() = default;

void FacePipeline::calibrate_int8() {
  GRAFT_CHECK_USAGE(options_.calibration >= kMinCalibrationImages, "--calibration: ", options_.calibration,
                    " faces (expected at least ", kMinCalibrationImages, ")");
  GRAFT_CHECK_USAGE(!options_.calibration_data.empty(), "--precision int8: the face embedder needs "
                    "--calibration-data DIR (a folder of face images to calibrate on)");
  const std::string& dir = options_.calibration_data;
  GRAFT_CHECK_USAGE(std::filesystem::exists(dir), "--calibration-data: '", dir,
                    "' does not exist (expected a folder of face images)");
  if (!cpu_has_vnni())
    log_warn("--precision int8: this CPU has no VNNI (avx512_vnni, avx_vnni or amx_int8): the int8 kernels "
             "fall back and may be slower than fp32");
  const std::string& file = options_.int8_calibration_file;
  nlohmann::ordered_json recipe;  // what a face run's kept calibration was made from
  recipe["weights_sha256"] = sha256_;
  recipe["calibration_data"] = std::filesystem::weakly_canonical(dir).string();
  recipe["requested"] = options_.calibration;
  recipe["detect"] = options_.detect;
  recipe["detector"] = options_.detector;
  if (!file.empty()) {
    if (auto kept = read_kept_int8_calibration(file, recipe)) {
      int8_calibration_ = *kept;
      int8_ = build_face_int8(*embedder_, int8_calibration_);
      return;
    }
  }
  OpenOptions open;
  if (!has_sub_folders(dir)) open.as_class = "faces";
  const ImageSet set = open_image_set(dir, open);
  const std::vector<size_t> order = epoch_order(set.size(), kFaceCalibrationSeed, 0, /*shuffle=*/true);
  const FaceTimes before = times_;  // calibration is not the verb's work
  std::vector<torch::Tensor> chips, batches;
  int64_t n = 0, without_face = 0;
  for (size_t i = 0; i < order.size() && n < options_.calibration; ++i) {
    std::vector<Face> found;
    try {
      found = faces(set.load(order[i]), set.identity(order[i]));
    } catch (const Error&) {
      ++without_face;
      continue;
    }
    if (found.empty()) {
      ++without_face;
      continue;
    }
    chips.push_back(face_net_input(found.front().chip, 150));
    ++n;
    if (chips.size() == 32) {
      batches.push_back(torch::stack(chips));
      chips.clear();
    }
  }
  if (!chips.empty()) batches.push_back(torch::stack(chips));
  times_ = before;
  GRAFT_CHECK_USAGE(n >= kMinCalibrationImages, "--calibration-data: '", dir, "' gave ", n, " faces (",
                    without_face, " images without a readable face; expected at least ", kMinCalibrationImages,
                    " to calibrate int8)");
  if (n < options_.calibration)
    log_warn(str_cat("--calibration ", options_.calibration, ": '", dir, "' gave only ", n,
                     " faces; calibrating on those"));
  int8_calibration_ = calibrate_face_int8(*embedder_, batches);
  int8_ = build_face_int8(*embedder_, int8_calibration_);
  log_info(str_cat("int8: the face embedder calibrated on ", n, " faces of ", dir));
  if (!file.empty()) keep_int8_calibration(file, int8_calibration_, recipe);
}

int64_t FacePipeline::embedding_dim() const { return mfn_ ? kMobileFaceNetDim : kFaceEmbeddingDim; }

FaceEmbedder& FacePipeline::embedder() {
  GRAFT_CHECK(!mfn_, "the embedder ", name_, " cannot be fine-tuned or exported (only face-api's ",
              kFaceEmbedderName, " can)");
  return embedder_;
}

void FacePipeline::load_run_embedder() {
  const std::string& run = options_.embedder_run;
  const std::string path = run + "/face_model.json";
  GRAFT_CHECK(std::filesystem::exists(path), "--embedder: ", run,
              " is not a face run (no face_model.json; made by graft train --task face)");
  const auto j = read_json_file(path);
  GRAFT_CHECK(j.is_object() && j.value("task", "") == "face", "--embedder: ", path,
              " is not a face model (expected a JSON object with \"task\": \"face\")");
  GRAFT_CHECK(j.contains("embedder") && j["embedder"].is_string() && j.contains("weights_sha256") &&
                  j["weights_sha256"].is_string(),
              "--embedder: ", path, " has no \"embedder\" and \"weights_sha256\"");
  const std::string name = j["embedder"].get<std::string>(), sha = j["weights_sha256"].get<std::string>();
  GRAFT_CHECK(!mfn_ || !j.contains("embedder_weights"), "--embedder: ", path, " names fine-tuned weights for ",
              name, ", but MobileFaceNet is not fine-tuned by graft (the file was not written by graft train)");
  if (!j.contains("embedder_weights")) {
    // A run trained on the frozen pretrained embedder: that one, if it is
    // the same as in --face-models.
    GRAFT_CHECK(name == name_ && sha == sha256_, "--embedder: ", run, " was trained with embedder \"", name,
                "\" weights sha256 ", sha, " but ", mfn_ ? options_.mobilefacenet_dir : options_.models_dir, " holds \"", name_, "\" sha256 ", sha256_);
    return;
  }
  const std::string file = run + "/" + j["embedder_weights"].get<std::string>();
  GRAFT_CHECK(std::filesystem::exists(file), "--embedder: ", file, " is missing (", path, " names it)");
  const std::string actual = sha256_file(file);
  GRAFT_CHECK(actual == sha, "--embedder: ", file, " has sha256 ", actual, " but ", path, " records ", sha,
              " (the file was changed or damaged; train again)");
  load_face_embedder_weights(embedder_, file);
  embedder_->eval();
  name_ = name;
  sha256_ = sha;
}

std::vector<Face> FacePipeline::faces(const cv::Mat& image, const std::string& name) {
  GRAFT_CHECK(image.depth() == CV_8U && (image.channels() == 1 || image.channels() == 3), name,
              ": expected an 8-bit grey or RGB image, got ", image.channels(), " channels");
  GRAFT_CHECK(image.cols >= kMinImageSide && image.rows >= kMinImageSide, name, ": ", image.cols, "x",
              image.rows, " pixels is too small to hold a face (expected at least ", kMinImageSide,
              "x", kMinImageSide, ")");
  ++times_.images;
  std::vector<cv::Rect> boxes;
  auto t0 = std::chrono::steady_clock::now();
  if (!options_.detect) {
    boxes.push_back(cv::Rect(0, 0, image.cols, image.rows));
  } else if (ssd_) {
    for (const auto& d : detect_faces(ssd_, image, options_.min_confidence)) {
      const cv::Rect crop = face_crop(d.box, image.size());
      if (std::min(crop.width, crop.height) >= options_.min_face) boxes.push_back(crop);
    }
  } else {
    cv::Mat grey;
    if (image.channels() == 3) cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
    else grey = image;
    cv::equalizeHist(grey, grey);
    detector_->cascade.detectMultiScale(grey, boxes, 1.1, 4, 0,
                                        cv::Size(options_.min_face, options_.min_face));
  }
  std::stable_sort(boxes.begin(), boxes.end(), [](const cv::Rect& a, const cv::Rect& b) { return a.area() > b.area(); });
  times_.detect += seconds_since(t0);
  std::vector<Face> out;
  for (const cv::Rect& box : boxes) {
    Face f;
    f.box = box;
    t0 = std::chrono::steady_clock::now();
    // Landmarks on the face crop (face-api's), mapped back; Haar boxes are
    // tighter than the SSD's, so they are widened by 10% on each side.
    cv::Rect crop = box;
    if (options_.detect && !ssd_) {
      const int mx = box.width / 10, my = box.height / 10;
      crop = cv::Rect(box.x - mx, box.y - my, box.width + 2 * mx, box.height + 2 * my) &
             cv::Rect(0, 0, image.cols, image.rows);
    }
    f.landmarks = face_landmarks(landmarks_, image(crop));
    for (auto& p : f.landmarks) p += cv::Point2f(static_cast<float>(crop.x), static_cast<float>(crop.y));
    times_.landmarks += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    f.chip = mfn_ ? align_arcface(image, f.landmarks) : align_face(image, f.landmarks);
    times_.align += seconds_since(t0);
    out.push_back(std::move(f));
  }
  times_.faces += static_cast<int64_t>(out.size());
  return out;
}

torch::Tensor FacePipeline::embed(const std::vector<cv::Mat>& chips) {
  if (chips.empty()) return torch::zeros({0, embedding_dim()});
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> inputs;
  Autocast autocast(parse_precision(options_.precision));
  if (mfn_) {
    for (const auto& chip : chips) inputs.push_back(mobilefacenet_input(chip));
    auto e = mfn_->forward(torch::stack(inputs)).to(torch::kFloat32);  // normalised in the graph
    times_.embed += seconds_since(t0);
    return e;
  }
  for (const auto& chip : chips) inputs.push_back(face_net_input(chip, 150));
  torch::NoGradGuard no_grad;
  auto e = int8_ ? int8_->forward(torch::stack(inputs)) : embedder_->forward(torch::stack(inputs)).to(torch::kFloat32);
  e = e / e.norm(2, 1, true).clamp_min(1e-12);
  times_.embed += seconds_since(t0);
  return e;
}

cv::Mat FacePipeline::load(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  cv::Mat image = load_image(path);
  times_.decode += seconds_since(t0);
  return image;
}

torch::Tensor FacePipeline::embed_file(const std::string& path) {
  const cv::Mat image = load(path);
  auto found = faces(image, path);
  GRAFT_CHECK(!found.empty(), path, ": no face found (detector ", options_.detector, ", min face ",
              options_.min_face, " px; --no-detect for already-cropped faces)");
  return embed({found.front().chip})[0];
}

FaceFolder embed_face_folder(FacePipeline& pipeline, const std::string& dir, std::vector<cv::Mat>* kept) {
  if (kept) kept->clear();
  namespace fs = std::filesystem;
  GRAFT_CHECK(fs::is_directory(dir), dir, " is not a folder (expected one sub-folder per identity)");
  FaceFolder out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') out.identities.push_back(name);
  }
  std::sort(out.identities.begin(), out.identities.end());
  GRAFT_CHECK(!out.identities.empty(), dir, " has no identity sub-folder (expected DIR/<person>/<image>)");
  std::vector<cv::Mat> chips;
  std::vector<torch::Tensor> parts;
  auto flush = [&] {
    if (chips.empty()) return;
    parts.push_back(pipeline.embed(chips));
    chips.clear();
  };
  out.files.assign(out.identities.size(), 0);
  out.faceless.assign(out.identities.size(), 0);
  for (size_t label = 0; label < out.identities.size(); ++label) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(fs::path(dir) / out.identities[label])) {
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && !name.empty() && name[0] != '.') files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    out.files[label] = static_cast<int64_t>(files.size());
    int64_t used = 0;
    for (const auto& path : files) {
      cv::Mat image;
      try {
        image = pipeline.load(path);
      } catch (const Error& e) {
        out.unreadable.push_back(unreadable_image(e, path, static_cast<int>(label)));
        out.skipped.push_back(e.what());
        continue;
      }
      try {
        auto found = pipeline.faces(image, path);
        if (found.empty()) {
          ++out.faceless[label];
          out.skipped.push_back(path + ": no face found");
          continue;
        }
        chips.push_back(found.front().chip);
        if (kept) kept->push_back(found.front().chip);
        out.paths.push_back(path);
        out.labels.push_back(static_cast<int64_t>(label));
        ++used;
        if (chips.size() == 32) flush();
      } catch (const Error& e) {
        ++out.faceless[label];  // too small to hold a face
        out.skipped.push_back(e.what());
      }
    }
    if (used == 0) out.empty_identities.push_back(out.identities[label]);
  }
  flush();
  out.embeddings = parts.empty() ? torch::zeros({0, pipeline.embedding_dim()}) : torch::cat(parts);
  return out;
}

namespace {

std::string no_face_hint(const FaceOptions& o) {
  return o.detect ? str_cat("detector ", o.detector, ", min face ", o.min_face,
                            " px; --no-detect for already-cropped faces")
                  : str_cat("--no-detect: only images under ", kMinImageSide, "x", kMinImageSide, " pixels give none");
}

int64_t total_files(const FaceFolder& f) {
  int64_t n = 0;
  for (int64_t c : f.files) n += c;
  return n;
}

}  // namespace

std::string empty_identity_reason(const FaceFolder& folder, const std::string& identity, const std::string& dir,
                                  const FaceOptions& options) {
  const auto it = std::find(folder.identities.begin(), folder.identities.end(), identity);
  GRAFT_CHECK(it != folder.identities.end(), "identity ", identity, " is not in ", dir);
  const size_t label = static_cast<size_t>(it - folder.identities.begin());
  const std::string where = str_cat("identity ", identity, " (", (std::filesystem::path(dir) / identity).string(), ")");
  const int64_t files = label < folder.files.size() ? folder.files[label] : 0;
  if (files == 0) return str_cat(where, " holds no files");
  std::vector<UnreadableImage> unreadable;
  for (const auto& u : folder.unreadable)
    if (u.label == static_cast<int>(label)) unreadable.push_back(u);
  const int64_t bad = static_cast<int64_t>(unreadable.size()), read = files - bad;
  if (read == 0)
    return str_cat(where, files == 1 ? ": its one file could not be read: "
                                     : str_cat(": none of its ", files, " files could be read: "),
                   unreadable_reasons(unreadable, {}), "; graft reads ", supported_image_formats());
  return str_cat(where, ": ", read, " of its ", files, files == 1 ? " file was" : " files were",
                 " read as images, and no face was found in ", read == 1 ? "it" : "any of them", " (",
                 no_face_hint(options), ")",
                 bad > 0 ? str_cat("; ", bad, " could not be read: ", unreadable_reasons(unreadable, {})) : "");
}

void report_face_folder(const FaceFolder& folder, const std::string& dir, const FaceOptions& options) {
  constexpr size_t kListed = 20;
  for (size_t i = 0; i < folder.skipped.size() && i < kListed; ++i) log_warn("skipped " + folder.skipped[i]);
  if (folder.skipped.size() > kListed)
    log_warn(str_cat("... and ", folder.skipped.size() - kListed, " more files skipped (counted below)"));
  // Nothing usable: check_face_folder_usable's error says it instead.
  if (folder.paths.empty()) return;
  const int64_t files = total_files(folder);
  if (!folder.unreadable.empty())
    log_warn(str_cat(dir, ": ", unreadable_summary(folder.unreadable, files, folder.identities)));
  int64_t faceless = 0;
  std::string per;
  for (size_t c = 0; c < folder.faceless.size(); ++c) {
    if (folder.faceless[c] == 0) continue;
    faceless += folder.faceless[c];
    per += str_cat(per.empty() ? "" : ", ", folder.identities[c], " ", folder.faceless[c]);
  }
  if (faceless > 0)
    log_warn(str_cat(dir, ": ", faceless, " of the ", files - static_cast<int64_t>(folder.unreadable.size()),
                     " images read gave no usable face (", per, "; ", no_face_hint(options), ")"));
}

void check_face_folder_usable(const FaceFolder& folder, const std::string& dir, const FaceOptions& options) {
  if (!folder.paths.empty()) return;
  const int64_t files = total_files(folder);
  GRAFT_CHECK(files > 0, dir, ": its identity folders hold no files (expected images: ", supported_image_formats(),
              ")");
  const int64_t read = files - static_cast<int64_t>(folder.unreadable.size());
  GRAFT_CHECK(read > 0, dir, ": ", unreadable_summary(folder.unreadable, files, folder.identities));
  throw Error(str_cat(dir, ": no face was found in any of the ", read, read == 1 ? " image" : " images", " read (",
                      no_face_hint(options), ")",
                      folder.unreadable.empty()
                          ? ""
                          : str_cat("; ", folder.unreadable.size(), " of the ", files,
                                    " files could not be read: ", unreadable_reasons(folder.unreadable, folder.identities))));
}

GalleryEnrolment enroll_gallery(FacePipeline& pipeline, const std::string& gallery_file, const std::string& dir) {
  namespace fs = std::filesystem;
  Gallery gallery;
  const bool existing = fs::exists(gallery_file);
  const bool detect = pipeline.options().detect;
  if (existing) {
    gallery = read_gallery(gallery_file);
    check_gallery_embedder(gallery, gallery_file, pipeline.embedder_name(), pipeline.embedder_sha256());
    GRAFT_CHECK(gallery.detect == detect, "gallery ", gallery_file, " was enrolled ",
                gallery.detect ? "with" : "without (--no-detect)", " face detection; enrol ",
                gallery.detect ? "without --no-detect" : "with --no-detect", " to keep its crops comparable");
  } else {
    gallery.embedder = pipeline.embedder_name();
    gallery.weights_sha256 = pipeline.embedder_sha256();
    gallery.threshold = default_face_threshold(gallery.embedder);
    gallery.detect = detect;
  }
  const FaceFolder folder = embed_face_folder(pipeline, dir);
  report_face_folder(folder, dir, pipeline.options());
  try {
    check_face_folder_usable(folder, dir, pipeline.options());
  } catch (const Error& e) {
    throw Error(str_cat(e.what(), "; gallery ", gallery_file, existing ? " left unchanged" : " not written"));
  }
  for (const auto& id : folder.empty_identities)
    log_warn(empty_identity_reason(folder, id, dir, pipeline.options()) + "; not enrolled");
  GalleryEnrolment result;
  for (size_t label = 0; label < folder.identities.size(); ++label) {
    GalleryIdentity id;
    id.name = folder.identities[label];
    for (size_t i = 0; i < folder.paths.size(); ++i) {
      if (folder.labels[i] != static_cast<int64_t>(label)) continue;
      const torch::Tensor e = folder.embeddings[static_cast<int64_t>(i)].to(torch::kFloat32).contiguous();
      id.images.push_back({fs::absolute(folder.paths[i]).lexically_normal().string(),
                           std::vector<float>(e.data_ptr<float>(), e.data_ptr<float>() + e.numel())});
    }
    if (id.images.empty()) continue;
    update_identity_mean(id);
    auto it = std::find_if(gallery.identities.begin(), gallery.identities.end(),
                           [&](const GalleryIdentity& g) { return g.name == id.name; });
    if (it != gallery.identities.end()) *it = std::move(id);
    else gallery.identities.push_back(std::move(id));
    ++result.enrolled;
  }
  write_gallery(gallery_file, gallery);
  result.images = folder.paths.size();
  result.skipped = folder.skipped.size();
  result.identities = gallery.identities.size();
  return result;
}

}  // namespace graft
