// graft face verbs in-process on a few att_faces identities (already-cropped
// faces, --no-detect), with the bad inputs of the face issue.
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/cli/cli.h"
#include "graft/core/files.h"
#include "graft/face/face_train.h"
#include "graft/face/nets.h"
#include "graft/face/pipeline.h"
#include "graft/models/int8.h"
#include "graft/select/transferability.h"
#include "graft/weights/safetensors.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;
using test::contains;
using test::graft_cli;


class FaceCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::face_data_missing(); !why.empty()) GTEST_SKIP() << why;
    att_ = test::shared_data("att_faces");
    // 5 identities x images 1-6 to enrol; image 7 of each to identify.
    test::copy_att_faces(dir_ / "gallery_in", {1, 5}, {1, 6});
  }
  std::string probe(int s, int i) const { return att_ + "/s" + std::to_string(s) + "/" + std::to_string(i) + ".pgm"; }
  std::string att_;
  test::TempDir dir_;
};

TEST_F(FaceCli, EnrollIdentifyVerify) {
  Result e = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir_ / "g.json", dir_ / "gallery_in"});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(contains(e.out, "enrolled 5 identities (30 images, 0 skipped)")) << e.out;
  auto g = nlohmann::json::parse(read_file(dir_ / "g.json"));
  EXPECT_EQ(g["embedder"], "face-api-1.7.15/face_recognition_model");
  EXPECT_EQ(g["weights_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(g["identities"].size(), 5u);
  EXPECT_EQ(g["identities"][0]["images"].size(), 6u);

  Result id = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--json", "--gallery", dir_ / "g.json",
                         probe(1, 7), probe(2, 7), probe(3, 7), probe(4, 7), probe(5, 7), probe(30, 1)});
  ASSERT_EQ(id.code, 0) << id.err;
  std::istringstream lines(id.out);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 6u);
  for (int s = 1; s <= 5; ++s) EXPECT_EQ(rows[s - 1]["identity"], "s" + std::to_string(s)) << rows[s - 1].dump();
  EXPECT_EQ(rows[0]["top"].size(), 3u);
  EXPECT_LT(rows[0]["top"][0]["distance"].get<double>(), rows[0]["top"][1]["distance"].get<double>());
  EXPECT_EQ(rows[5]["identity"], "unknown") << "s30 is not enrolled: " << rows[5].dump();

  Result same = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", probe(1, 7), probe(1, 8)});
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_TRUE(nlohmann::json::parse(same.out)["same"].get<bool>()) << same.out;
  Result diff = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", probe(1, 7), probe(2, 8)});
  ASSERT_EQ(diff.code, 0) << diff.err;
  EXPECT_FALSE(nlohmann::json::parse(diff.out)["same"].get<bool>()) << diff.out;
  EXPECT_LT(nlohmann::json::parse(same.out)["distance"].get<double>(),
            nlohmann::json::parse(diff.out)["distance"].get<double>());
}

TEST_F(FaceCli, EvaluateEqualsAnIndependentComputation) {
  Result r = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--data", dir_ / "gallery_in", "--trials", "3",
                        "--far", "0.01", "--dump", dir_ / "dump.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto m = nlohmann::json::parse(r.out);
  EXPECT_EQ(m["images"], 30);
  EXPECT_EQ(m["verification"]["genuine_pairs"], 5 * 15);
  EXPECT_EQ(m["verification"]["impostor_pairs"], 5 * 15);
  const std::string cmd = std::string("/usr/bin/python3 ") + GRAFT_SOURCE_DIR +
                          "/tests/reference/face_protocol_ref.py " + (dir_ / "dump.json") + " " + (dir_ / "ref.json");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto ref = nlohmann::json::parse(read_file(dir_ / "ref.json"));
  EXPECT_NEAR(m["verification"]["accuracy"].get<double>(), ref["accuracy"].get<double>(), 1e-9);
  EXPECT_NEAR(m["verification"]["auc"].get<double>(), ref["auc"].get<double>(), 1e-9);
  EXPECT_NEAR(m["verification"]["tar_at_far"].get<double>(), ref["tar_at_far"].get<double>(), 1e-9);
  for (const auto& row : m["identification"])
    EXPECT_NEAR(row["rank1"].get<double>(), ref["rank1"][std::to_string(row["k"].get<int>())].get<double>(), 1e-9);
  for (const char* key : {"landmarks_ms_per_face", "align_ms_per_face", "embed_ms_per_face"})
    EXPECT_GT(m["time"][key].get<double>(), 0.0) << key;
}

// --precision int8 (issue 21): calibrated on the verb's own folder. With
// --calibration 30 every face of the 30 is drawn, so the ranges are those of
// all 30 chips whatever the seeded order; the dumped embeddings equal
// build_face_int8's on chips made here, and stay close to fp32's.
TEST_F(FaceCli, Int8EvaluateCalibratesOnItsFolder) {
  Result r = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--data", dir_ / "gallery_in",
                        "--trials", "1", "--precision", "int8", "--calibration", "30", "--dump", dir_ / "int8.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto m = nlohmann::json::parse(r.out);
  EXPECT_EQ(m["precision"], "int8");
  EXPECT_EQ(m["int8_calibration"]["faces"], 30);
  EXPECT_EQ(m["int8_calibration"]["data"], dir_ / "gallery_in");
  Result f = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--data", dir_ / "gallery_in",
                        "--trials", "1", "--dump", dir_ / "fp32.json"});
  ASSERT_EQ(f.code, 0) << f.err;
  const auto d8 = nlohmann::json::parse(read_file(dir_ / "int8.json"));
  const auto d32 = nlohmann::json::parse(read_file(dir_ / "fp32.json"));
  ASSERT_EQ(d8["paths"], d32["paths"]);

  FaceOptions o;
  o.detect = false;
  FacePipeline pipeline(o);
  std::vector<torch::Tensor> chips;
  for (const auto& p : d8["paths"]) {
    const std::string path = p.get<std::string>();
    chips.push_back(face_net_input(pipeline.faces(pipeline.load(path), path).front().chip, 150));
  }
  const torch::Tensor x = torch::stack(chips);
  const auto int8 = build_face_int8(*pipeline.embedder(), calibrate_face_int8(*pipeline.embedder(), {x}));
  torch::Tensor want;
  {
    torch::InferenceMode guard;
    want = int8->forward(x);
  }
  want = want / want.norm(2, 1, true);
  auto rows = [](const nlohmann::json& d) {
    std::vector<torch::Tensor> out;
    for (const auto& e : d["embeddings"]) out.push_back(torch::tensor(e.get<std::vector<float>>()));
    return torch::stack(out);
  };
  const torch::Tensor got = rows(d8), fp32 = rows(d32);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5);
  EXPECT_GT((got - fp32).abs().max().item<double>(), 1e-4) << "int8 embeddings equal fp32's: int8 did not run";
  EXPECT_GT(torch::cosine_similarity(got, fp32, 1).min().item<double>(), 0.99);

  // A face run: graft embed --precision int8 calibrates on the run's
  // training faces (face_model.json's "data"); its embeddings are those of
  // the int8 network above (the same 30 faces calibrate it).
  Result t = graft_cli({"train", "--task", "face", "--no-detect", "--threads", "1", "--data", dir_ / "gallery_in",
                        "--out", dir_ / "run"});
  ASSERT_EQ(t.code, 0) << t.err;
  const std::vector<std::string> files = {(dir_ / "gallery_in") + "/s1/1.pgm", (dir_ / "gallery_in") + "/s2/3.pgm"};
  Result e8 = graft_cli({"embed", dir_ / "run", files[0], files[1], "--out", dir_ / "e8.safetensors",
                         "--precision", "int8", "--calibration", "30", "--threads", "1"});
  ASSERT_EQ(e8.code, 0) << e8.err;
  const SafetensorsFile embedded = load_safetensors(dir_ / "e8.safetensors");
  ASSERT_EQ(embedded.tensors.size(), 1u);
  const torch::Tensor e = embedded.tensors[0].second;
  const auto inputs = nlohmann::json::parse(embedded.metadata.at("inputs")).get<std::vector<std::string>>();
  ASSERT_EQ(inputs, files);
  const std::vector<std::string> paths = d8["paths"].get<std::vector<std::string>>();
  for (size_t i = 0; i < files.size(); ++i) {
    const auto it = std::find(paths.begin(), paths.end(), files[i]);
    ASSERT_NE(it, paths.end()) << files[i];
    EXPECT_LT((e[i] - want[it - paths.begin()]).abs().max().item<double>(), 1e-5) << files[i];
  }

  // The run keeps its calibration (int8_calibration.json, as an image run
  // does): a second call with the same recipe reads it instead of writing it.
  const std::string kept = dir_ / "run/int8_calibration.json";
  ASSERT_TRUE(fs::exists(kept));
  const auto cal = nlohmann::json::parse(read_file(kept));
  EXPECT_EQ(cal["images"], 30);
  EXPECT_EQ(cal["requested"], 30);
  EXPECT_EQ(cal["detect"], false);
  const auto written = fs::last_write_time(kept);
  Result again = graft_cli({"embed", dir_ / "run", files[0], "--out", dir_ / "again.safetensors", "--precision",
                            "int8", "--calibration", "30", "--threads", "1"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(fs::last_write_time(kept), written);
  EXPECT_LT((load_safetensors(dir_ / "again.safetensors").tensors[0].second[0] - e[0]).abs().max().item<double>(),
            1e-6);

  // graft score ranks face:dlib on its int8 embeddings: LogME of the
  // evaluate dump's int8 embeddings (the same 30 faces calibrate both).
  Result sc = graft_cli({"score", "--quiet", "--threads", "1", "--no-detect", "--data", dir_ / "gallery_in",
                         "--backbones", "face:dlib", "--precision", "int8", "--calibration", "30", "--out",
                         dir_ / "score.json"});
  ASSERT_EQ(sc.code, 0) << sc.err;
  const auto scored = nlohmann::json::parse(read_file(dir_ / "score.json"));
  const auto labels = torch::tensor(d8["labels"].get<std::vector<int64_t>>());
  EXPECT_NEAR(scored[0]["logme"].get<double>(), logme(got, labels), 1e-6);
  EXPECT_GT(std::abs(scored[0]["logme"].get<double>() - logme(fp32, labels)), 1e-6);

  // Bad input: too few calibration faces; int8 without a folder to
  // calibrate on; int8 with fine-tuning.
  Result few = graft_cli({"face", "evaluate", "--no-detect", "--data", dir_ / "gallery_in", "--precision", "int8",
                          "--calibration", "8"});
  EXPECT_EQ(few.code, 2);
  EXPECT_TRUE(contains(few.err, "--calibration")) << few.err;
  Result verify = graft_cli({"face", "verify", "--no-detect", "--precision", "int8", probe(1, 7), probe(1, 8)});
  EXPECT_EQ(verify.code, 2);
  EXPECT_TRUE(contains(verify.err, "--calibration-data DIR")) << verify.err;
  Result ft = graft_cli({"train", "--task", "face", "--no-detect", "--data", dir_ / "gallery_in", "--finetune",
                         "arcface", "--precision", "int8", "--out", dir_ / "ft"});
  EXPECT_EQ(ft.code, 2);
  EXPECT_TRUE(contains(ft.err, "--precision int8 with --finetune arcface")) << ft.err;
  EXPECT_FALSE(fs::exists(dir_ / "ft"));
}

TEST_F(FaceCli, BadInputsAreNamedAndNothingIsLost) {
  // A non-image, a tiny image, an RGBA image (alpha dropped: fine), a colour
  // image, and an identity folder with nothing usable.
  std::ofstream(dir_ / "gallery_in/s1/notes.txt") << "not an image";
  cv::imwrite(dir_ / "gallery_in/s2/tiny.png", cv::Mat(8, 8, CV_8UC1, cv::Scalar(90)));
  cv::Mat grey = cv::imread(probe(3, 9), cv::IMREAD_GRAYSCALE), rgba, bgr;
  cv::cvtColor(grey, rgba, cv::COLOR_GRAY2BGRA);
  cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
  cv::imwrite(dir_ / "gallery_in/s3/rgba.png", rgba);
  cv::imwrite(dir_ / "gallery_in/s4/colour.jpg", bgr);
  fs::create_directories(dir_ / "gallery_in/s99");
  std::ofstream(dir_ / "gallery_in/s99/readme.md") << "# nothing";
  // A format graft does not read, a truncated JPEG, and a GIF (read).
  test::write_bytes(dir_ / "gallery_in/s5/icon.ico", test::ico_bytes(grey));
  std::vector<uint8_t> jpg;
  cv::imencode(".jpg", grey, jpg);
  test::write_bytes(dir_ / "gallery_in/s4/cut.jpg", std::string(jpg.begin(), jpg.end() - 100));
  test::write_bytes(dir_ / "gallery_in/s2/face.gif", test::gif_bytes(cv::imread(probe(2, 9), cv::IMREAD_GRAYSCALE)));
  const std::string in = dir_ / "gallery_in";
  Result e = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir_ / "g.json", in});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(contains(e.out, "enrolled 5 identities (33 images, 5 skipped)")) << e.out;
  const std::string formats = "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
  for (const std::string& line : {
           "warning: skipped cannot read image '" + in + "/s1/notes.txt': not an image (starts with \"not an i\")" +
               formats + "\n",
           "warning: skipped " + in + "/s2/tiny.png: 8x8 pixels is too small to hold a face (expected at least 16x16)\n",
           "warning: skipped cannot read image '" + in + "/s4/cut.jpg': truncated JPEG (no end-of-image marker)" +
               formats + "\n",
           "warning: skipped cannot read image '" + in + "/s5/icon.ico': unsupported format ICO" + formats + "\n",
           "warning: " + in + ": 4 of 38 files could not be read and are left out: 2 are not images (s1 1, s99 1; "
               "first: '" + in + "/s1/notes.txt'), 1 is ICO, which graft does not read (s5 1; first: '" + in +
               "/s5/icon.ico'), 1 is truncated (s4 1; first: '" + in + "/s4/cut.jpg')" + formats + "\n",
           "warning: " + in + ": 1 of the 34 images read gave no usable face (s2 1; --no-detect: only images under "
               "16x16 pixels give none)\n",
           "warning: identity s99 (" + in + "/s99): its one file could not be read: 1 is not an image (first: '" + in +
               "/s99/readme.md')" + formats + "; not enrolled\n"})
    EXPECT_TRUE(contains(e.err, line)) << line << "\nin:\n" << e.err;
  EXPECT_FALSE(contains(e.err, "usable face; not enrolled")) << e.err;
  const std::string before = read_file(dir_ / "g.json");

  // A gallery from other weights is refused and left as it was.
  auto g = nlohmann::json::parse(before);
  g["weights_sha256"] = std::string(64, '0');
  write_file_atomic(dir_ / "other.json", g.dump());
  Result other = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir_ / "other.json", dir_ / "gallery_in"});
  EXPECT_EQ(other.code, 1);
  EXPECT_TRUE(contains(other.err, "was made by embedder")) << other.err;
  EXPECT_EQ(nlohmann::json::parse(read_file(dir_ / "other.json"))["weights_sha256"], std::string(64, '0'));
  Result other_id = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--gallery", dir_ / "other.json", probe(1, 7)});
  EXPECT_EQ(other_id.code, 1);

  // A folder where nothing can be read leaves the gallery unchanged, and
  // says so: never "no usable face" for images that were never read; so do
  // evaluate and train --task face, before any pair or model.
  fs::create_directories(dir_ / "empty/nobody");
  std::ofstream(dir_ / "empty/nobody/x.jpg") << "garbage";
  Result none = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir_ / "g.json", dir_ / "empty"});
  EXPECT_EQ(none.code, 1);
  const std::string nothing = dir_ / "empty" + ": 0 of 1 files could be read: 1 is not an image (nobody 1; first: '" +
                              dir_ / "empty/nobody/x.jpg" + "')" + formats;
  EXPECT_TRUE(contains(none.err, "error: " + nothing + "; gallery " + dir_ / "g.json" + " left unchanged\n"))
      << none.err;
  EXPECT_FALSE(contains(none.err, "usable face")) << none.err;
  EXPECT_EQ(read_file(dir_ / "g.json"), before);
  Result none_eval = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--data", dir_ / "empty"});
  EXPECT_EQ(none_eval.code, 1);
  EXPECT_TRUE(contains(none_eval.err, "error: " + nothing + "\n")) << none_eval.err;
  EXPECT_FALSE(contains(none_eval.err, "warning: " + nothing)) << "said twice: " << none_eval.err;
  EXPECT_FALSE(contains(none_eval.err, "genuine")) << none_eval.err;
  Result none_train = graft_cli({"train", "--task", "face", "--no-detect", "--threads", "1", "--data", dir_ / "empty",
                                 "--out", dir_ / "none-run"});
  EXPECT_EQ(none_train.code, 1);
  EXPECT_TRUE(contains(none_train.err, "error: " + nothing + "\n")) << none_train.err;

  // Identify: a non-image input is an error naming it; the others still print.
  Result id = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--gallery", dir_ / "g.json",
                         dir_ / "gallery_in/s1/notes.txt", probe(2, 9)});
  EXPECT_EQ(id.code, 1);
  EXPECT_TRUE(contains(id.err, "error: cannot read image '" + in + "/s1/notes.txt': not an image")) << id.err;
  EXPECT_TRUE(contains(id.out, "\ts2\t")) << id.out;
  Result missing = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--gallery", dir_ / "nope.json", probe(2, 9)});
  EXPECT_EQ(missing.code, 1);
  EXPECT_TRUE(contains(missing.err, "nope.json does not exist")) << missing.err;
}

// Faces placed on a grey canvas (att_faces are tight crops; the SSD wants scenes).
cv::Mat canvas_with(const std::vector<std::pair<std::string, cv::Rect>>& faces, cv::Size size) {
  cv::Mat canvas(size, CV_8UC1, cv::Scalar(128));
  for (const auto& [path, where] : faces) {
    cv::Mat face = cv::imread(path, cv::IMREAD_GRAYSCALE), scaled;
    cv::resize(face, scaled, where.size(), 0, 0, cv::INTER_LINEAR);
    scaled.copyTo(canvas(where));
  }
  return canvas;
}

TEST_F(FaceCli, SeveralFacesAndAHugeImageWithTheDetector) {
  Result e = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir_ / "g.json",
                        dir_ / "gallery_in"});
  ASSERT_EQ(e.code, 0) << e.err;
  cv::imwrite(dir_ / "group.png", canvas_with({{probe(1, 9), {10, 70, 92, 112}},
                                               {probe(2, 9), {120, 20, 138, 168}},
                                               {probe(3, 9), {262, 100, 92, 112}}},
                                              {360, 240}));
  cv::imwrite(dir_ / "huge.jpg", canvas_with({{probe(4, 9), {700, 300, 736, 896}}}, {2400, 1800}));
  Result r = graft_cli({"face", "identify", "--threads", "1", "--all-faces", "--gallery", dir_ / "g.json",
                        dir_ / "group.png", dir_ / "huge.jpg"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::multiset<std::string> found;
  while (std::getline(lines, line)) found.insert(line.substr(line.find('\t') + 1, 2));
  EXPECT_EQ(found, (std::multiset<std::string>{"s1", "s2", "s3", "s4"})) << r.out;
  EXPECT_TRUE(contains(r.out, "group.png#2")) << r.out;
}

// An identity whose images were read but held no face says so, with how
// many were read and the detector's settings; a folder without any face
// says so before any pair is formed.
TEST_F(FaceCli, IdentitiesWithImagesButNoFaceSayHowManyWereRead) {
  const std::string data = dir_ / "detect";
  for (const char* id : {"a", "b", "blank"}) fs::create_directories(data + "/" + id);
  cv::imwrite(data + "/a/1.png", canvas_with({{probe(1, 9), {120, 20, 138, 168}}}, {360, 240}));
  cv::imwrite(data + "/b/1.png", canvas_with({{probe(2, 9), {120, 20, 138, 168}}}, {360, 240}));
  for (const char* f : {"1.png", "2.png"}) cv::imwrite(data + "/blank/" + f, cv::Mat(240, 360, CV_8UC1, cv::Scalar(128)));
  std::ofstream(data + "/blank/notes.txt") << "no face here";
  Result t = graft_cli({"train", "--task", "face", "--threads", "1", "--data", data, "--out", dir_ / "run"});
  EXPECT_EQ(t.code, 1);
  const std::string formats = "; graft reads PNG, JPEG, BMP, GIF, PNM (PBM/PGM/PPM/PAM/PFM), WebP and TIFF";
  EXPECT_TRUE(contains(t.err, "error: --data: identity blank (" + data + "/blank): 2 of its 3 files were read as "
                              "images, and no face was found in any of them (detector ssd, min face 40 px; "
                              "--no-detect for already-cropped faces); 1 could not be read: 1 is not an image "
                              "(first: '" + data + "/blank/notes.txt') (remove it or add images)\n"))
      << t.err;
  EXPECT_TRUE(contains(t.err, "warning: " + data + ": 2 of the 4 images read gave no usable face (blank 2; detector "
                              "ssd, min face 40 px; --no-detect for already-cropped faces)\n"))
      << t.err;
  fs::remove_all(data + "/a");
  fs::remove_all(data + "/b");
  Result e = graft_cli({"face", "evaluate", "--threads", "1", "--data", data});
  EXPECT_EQ(e.code, 1);
  EXPECT_TRUE(contains(e.err, "error: " + data + ": no face was found in any of the 2 images read (detector ssd, min "
                              "face 40 px; --no-detect for already-cropped faces); 1 of the 3 files could not be "
                              "read: 1 is not an image (blank 1; first: '" + data + "/blank/notes.txt')\n"))
      << e.err;
}

// The same faces as GIF and as PNG (tests/reference/gif_fixtures.py, made
// by Pillow from AT&T's PGMs; 8-bit grey, lossless either way) give the same
// figures.
TEST_F(FaceCli, EvaluateOnGifsEqualsEvaluateOnPngs) {
  if (!test::have_fixture("gif_faces/gif/s1/1.gif")) GTEST_SKIP() << "fixture gif_faces missing (run make_fixtures.py)";
  std::vector<nlohmann::json> runs;
  for (const char* ext : {"gif", "png"}) {
    Result r = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--data",
                          test::fixture(std::string("gif_faces/") + ext), "--ks", "1,3", "--trials", "2", "--dump",
                          dir_ / (std::string(ext) + ".json")});
    ASSERT_EQ(r.code, 0) << ext << ": " << r.err;
    EXPECT_FALSE(contains(r.err, "warning")) << r.err;
    runs.push_back(nlohmann::json::parse(r.out));
  }
  EXPECT_EQ(runs[0]["images"], 20);
  EXPECT_EQ(runs[0]["identities"], 4);
  EXPECT_EQ(runs[0]["skipped"], 0);
  for (const char* key : {"images", "identities", "skipped", "verification", "identification"})
    EXPECT_EQ(runs[0][key], runs[1][key]) << key;
  EXPECT_GT(runs[0]["verification"]["accuracy"].get<double>(), 0.5);
  // The embeddings themselves are equal, not only the figures.
  const auto a = nlohmann::json::parse(read_file(dir_ / "gif.json")), b = nlohmann::json::parse(read_file(dir_ / "png.json"));
  EXPECT_EQ(a["embeddings"], b["embeddings"]);
}

TEST_F(FaceCli, DetectionReportsImagesWithoutAFace) {
  if (!fs::exists("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"))
    GTEST_SKIP() << "Debian opencv-data is not installed";
  cv::imwrite(dir_ / "blank.png", cv::Mat(200, 200, CV_8UC3, cv::Scalar(40, 80, 120)));
  Result r = graft_cli({"face", "verify", "--threads", "1", dir_ / "blank.png", probe(1, 1)});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "blank.png: no face found")) << r.err;
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

TEST_F(FaceCli, TrainTaskFaceCentroidAndLinear) {
  // Train on images 1-6 of five people, test on 7-10.
  test::copy_att_faces(dir_ / "test_in", {1, 5}, {7, 10});
  for (const char* head : {"centroid", "linear"}) {
    const std::string out = dir_ / (std::string("run-") + head);
    Result r = graft_cli({"train", "--task", "face", "--no-detect", "--threads", "1", "--head", head, "--data",
                          dir_ / "gallery_in", "--test", dir_ / "test_in", "--out", out});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["classes"], 5);
    EXPECT_EQ(j["train_images"], 30);
    EXPECT_DOUBLE_EQ(j["train_accuracy"].get<double>(), 1.0) << head;
    EXPECT_GE(j["test_accuracy"].get<double>(), 0.9) << head;
    const auto c = load_face_classifier(out);
    EXPECT_EQ(c.head, head);
    EXPECT_EQ(c.classes.size(), 5u);

    // graft eval on the run sees the crops training saw: the same accuracy.
    Result ev = graft_cli({"eval", out, "--data", dir_ / "test_in", "--threads", "1"});
    ASSERT_EQ(ev.code, 0) << ev.err;
    const auto ej = nlohmann::json::parse(ev.out);
    EXPECT_DOUBLE_EQ(ej["accuracy"].get<double>(), j["test_accuracy"].get<double>()) << head;
    EXPECT_EQ(ej["images"], 20);
    // graft predict: top-1 of every test image agrees with that accuracy,
    // and for centroids the distance is that of the library's own embedding.
    std::vector<std::string> args = {"predict", out, "--json", "--top-k", "2", "--threads", "1"};
    for (int s = 1; s <= 5; ++s)
      for (int i = 7; i <= 10; ++i) args.push_back(probe(s, i));
    Result pr = graft_cli(args);
    ASSERT_EQ(pr.code, 0) << pr.err;
    std::istringstream lines(pr.out);
    std::string line;
    int right = 0, n = 0;
    FaceOptions fo;
    fo.detect = false;
    FacePipeline pipeline(fo);
    while (std::getline(lines, line)) {
      const auto pj = nlohmann::json::parse(line);
      const std::string input = pj["input"];
      ASSERT_EQ(pj["top"].size(), 2u);
      const std::string label = pj["top"][0]["label"];
      right += input.find("/" + label + "/") != std::string::npos;
      ++n;
      if (std::string(head) == "centroid") {
        const auto it = std::find(c.classes.begin(), c.classes.end(), label);
        const auto e = pipeline.embed_file(input);
        const double d = (e - c.weight[it - c.classes.begin()]).norm().item<double>();
        EXPECT_NEAR(pj["top"][0]["distance"].get<double>(), d, 1e-5) << input;
        EXPECT_LE(pj["top"][0]["distance"].get<double>(), pj["top"][1]["distance"].get<double>());
      }
    }
    EXPECT_EQ(n, 20);
    EXPECT_DOUBLE_EQ(static_cast<double>(right) / n, ej["accuracy"].get<double>()) << head;
    // graft embed: the embedding of each image of a folder (sorted), as the
    // pipeline computes it, with a file that is not an image skipped.
    test::write_bytes(dir_ / "test_in/s1/notes.txt", "not an image");
    const std::string emb = dir_ / (std::string("emb-") + head + ".safetensors");
    Result em = graft_cli({"embed", out, dir_ / "test_in/s1", "--out", emb, "--threads", "1"});
    ASSERT_EQ(em.code, 0) << em.err;
    EXPECT_EQ(nlohmann::json::parse(em.out)["skipped"], 1);
    const SafetensorsFile ef = load_safetensors(emb);
    const auto names = nlohmann::json::parse(ef.metadata.at("inputs")).get<std::vector<std::string>>();
    ASSERT_EQ(names.size(), 4u);
    for (size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(fs::path(names[i]).parent_path(), fs::path(dir_ / "test_in/s1")) << names[i];
      if (i > 0) EXPECT_LT(names[i - 1], names[i]);
      EXPECT_LT((ef.tensors.at(0).second[static_cast<int64_t>(i)] - pipeline.embed_file(names[i])).abs().max().item<double>(),
                1e-6) << names[i];
    }
    fs::remove(dir_ / "test_in/s1/notes.txt");
    Result again = graft_cli({"train", "--task", "face", "--no-detect", "--data", dir_ / "gallery_in", "--out", out});
    EXPECT_EQ(again.code, 1);
    EXPECT_TRUE(contains(again.err, "--overwrite")) << again.err;
  }
  Result bad = graft_cli({"train", "--task", "face", "--no-detect", "--head", "mlp", "--data", dir_ / "gallery_in",
                          "--out", dir_ / "x"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "--head")) << bad.err;
  // An identity the run does not know, and a file that is not an image.
  fs::create_directories(dir_ / "test_in/s9");
  fs::copy_file(probe(9, 1), dir_ / "test_in/s9/1.pgm");
  Result unknown = graft_cli({"eval", dir_ / "run-centroid", "--data", dir_ / "test_in", "--threads", "1"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(contains(unknown.err, "identity s9 is not in the training data")) << unknown.err;
  write_file_atomic(dir_ / "notes.txt", "not an image\n");
  Result junk = graft_cli({"predict", dir_ / "run-centroid", dir_ / "notes.txt", "--threads", "1"});
  EXPECT_EQ(junk.code, 1);
  EXPECT_TRUE(contains(junk.err, "notes.txt")) << junk.err;
}

}  // namespace
}  // namespace graft

namespace graft {
namespace {

TEST_F(FaceCli, FinetunedEmbedderIsRecordedAndUsedByEveryVerb) {
  const std::string run = dir_ / "run-ft";
  Result t = graft_cli({"train", "--task", "face", "--no-detect", "--threads", "1", "--quiet", "--finetune", "arcface",
                        "--finetune-epochs", "1", "--data", dir_ / "gallery_in", "--out", run});
  ASSERT_EQ(t.code, 0) << t.err;
  const auto tj = nlohmann::json::parse(t.out);
  EXPECT_EQ(tj["finetune"], "arcface");
  EXPECT_EQ(tj["finetune_epoch_seconds"].size(), 1u);
  const auto model = nlohmann::json::parse(read_file(run + "/face_model.json"));
  const std::string sha = model["weights_sha256"], name = model["embedder"];
  EXPECT_EQ(sha, sha256_file(run + "/embedder.safetensors"));
  EXPECT_NE(sha, model["base_weights_sha256"].get<std::string>());
  EXPECT_TRUE(contains(name, "finetune-arcface")) << name;
  EXPECT_EQ(model["finetune"]["augment"], "face");

  // A gallery enrolled with the fine-tuned embedder records it ...
  Result e = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--embedder", run, "--gallery",
                        dir_ / "ft.json", dir_ / "gallery_in"});
  ASSERT_EQ(e.code, 0) << e.err;
  const auto g = nlohmann::json::parse(read_file(dir_ / "ft.json"));
  EXPECT_EQ(g["embedder"], name);
  EXPECT_EQ(g["weights_sha256"], sha);
  Result ok = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--json", "--embedder", run, "--gallery",
                         dir_ / "ft.json", probe(2, 8)});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["top"][0]["identity"], "s2") << ok.out;
  // ... and is refused by the pretrained embedder, naming both; a pretrained
  // gallery is refused by the fine-tuned embedder.
  Result refused = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--gallery", dir_ / "ft.json", probe(2, 8)});
  EXPECT_EQ(refused.code, 1);
  EXPECT_TRUE(contains(refused.err, "was made by embedder \"" + name + "\" with weights sha256 " + sha)) << refused.err;
  EXPECT_TRUE(contains(refused.err, "this one is \"face-api-1.7.15/face_recognition_model\"")) << refused.err;
  Result pre = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", dir_ / "pre.json", dir_ / "gallery_in"});
  ASSERT_EQ(pre.code, 0) << pre.err;
  Result refused2 = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--embedder", run, "--gallery",
                               dir_ / "pre.json", probe(1, 7), probe(1, 8)});
  EXPECT_EQ(refused2.code, 1);
  EXPECT_TRUE(contains(refused2.err, "this one is \"" + name + "\"")) << refused2.err;
  Result add = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--embedder", run, "--gallery",
                          dir_ / "pre.json", dir_ / "gallery_in"});
  EXPECT_EQ(add.code, 1);

  // verify and evaluate use it too: other distances, its name in the metrics.
  Result v0 = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", probe(1, 7), probe(1, 8)});
  Result v1 = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", "--embedder", run, probe(1, 7), probe(1, 8)});
  ASSERT_EQ(v1.code, 0) << v1.err;
  EXPECT_NE(nlohmann::json::parse(v0.out)["distance"], nlohmann::json::parse(v1.out)["distance"]);
  Result ev = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--trials", "1", "--embedder", run,
                         "--data", dir_ / "gallery_in"});
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_EQ(nlohmann::json::parse(ev.out)["weights_sha256"], sha);

  // A changed weights file is refused; so is a folder that is not a face run.
  std::string bytes = read_file(run + "/embedder.safetensors");
  bytes[bytes.size() - 1] ^= 1;
  write_file_atomic(run + "/embedder.safetensors", bytes);
  Result damaged = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--embedder", run, probe(1, 7), probe(1, 8)});
  EXPECT_EQ(damaged.code, 1);
  EXPECT_TRUE(contains(damaged.err, "changed or damaged")) << damaged.err;
  Result notrun = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--embedder", dir_ / "gallery_in", probe(1, 7), probe(1, 8)});
  EXPECT_EQ(notrun.code, 1);
  EXPECT_TRUE(contains(notrun.err, "--embedder")) << notrun.err;
}

TEST_F(FaceCli, FinetuneOptionsThatDoNotFitAreUsageErrors) {
  auto train = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "--task", "face", "--no-detect", "--data", dir_ / "gallery_in", "--out", dir_ / "bad"};
    args.insert(args.end(), extra.begin(), extra.end());
    return graft_cli(args);
  };
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{"--finetune", "sphereface"}, {"--finetune: 'sphereface'", "expected one of none, arcface, cosface, triplet"}},
      {{"--margin", "0.3"}, {"--margin", "--finetune is none"}},
      {{"--finetune-epochs", "3"}, {"--finetune-epochs", "--finetune is none"}},
      {{"--augment", "face"}, {"--augment", "--finetune is none"}},
      {{"--finetune", "triplet", "--scale", "30"}, {"--scale: 30 given with --finetune triplet"}},
      {{"--finetune", "arcface", "--margin", "2"}, {"--margin: 2", "below pi/2"}},
      {{"--finetune", "cosface", "--augment", "strong"}, {"--augment: \"strong\"", "face or none"}},
      {{"--finetune", "arcface", "--finetune-epochs", "0"}, {"--finetune-epochs: 0", "at least 1"}},
      {{"--head", "arcface"}, {"--head: \"arcface\"", "--finetune arcface"}},
  };
  for (const auto& [extra, wanted] : cases) {
    Result r = train(extra);
    EXPECT_EQ(r.code, 2) << extra[0] << " " << r.err;
    for (const auto& w : wanted) EXPECT_TRUE(contains(r.err, w)) << "wanted \"" << w << "\" in: " << r.err;
  }
  EXPECT_FALSE(fs::exists(dir_ / "bad"));
}

}  // namespace
}  // namespace graft
