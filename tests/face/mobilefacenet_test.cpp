// MobileFaceNet (issue 18, section 3): parity with TF.js's own execution of
// the graph (tests/reference/mobilefacenet_fixtures.py), the ArcFace
// alignment against an independent least-squares solve, the package checks,
// --embedder names, and galleries of the other embedder refused.
#include "graft/face/mobilefacenet.h"

#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/face/gallery.h"
#include "graft/face/pipeline.h"
#include "graft/select/transferability.h"
#include "test_util.h"

namespace graft {
namespace {

namespace fs = std::filesystem;

std::string mfn_missing() {
  if (!fs::exists(default_mobilefacenet_dir() + "/mobilefacenet.bin"))
    return "MobileFaceNet absent (bash scripts/mobilefacenet_model.sh)";
  return "";
}

cv::Mat mfn_raw_chip(const nlohmann::json& chip) {
  const std::string bytes = read_file(test::fixture(chip.at("file").get<std::string>()));
  EXPECT_EQ(bytes.size(), 112u * 112u * 3u);
  cv::Mat m(112, 112, CV_8UC3);
  std::memcpy(m.data, bytes.data(), bytes.size());
  return m;
}

TEST(MobileFaceNet, EmbeddingsEqualTfjsGraphModel) {
  auto fx = test::parity_fixture("mobilefacenet_parity", "mobilefacenet_fixtures.py");
  if (!fx) GTEST_SKIP() << "no mobilefacenet_parity.json (tests/reference/mobilefacenet_fixtures.py needs node, npm "
                           "and the packages)";
  const MobileFaceNet net(fx->at("model").get<std::string>());
  EXPECT_EQ(net.nodes(), 359u);
  std::vector<torch::Tensor> inputs, wants;
  for (const auto& chip : fx->at("chips")) {
    inputs.push_back(mobilefacenet_input(mfn_raw_chip(chip)));
    wants.push_back(torch::tensor(chip.at("embedding").get<std::vector<float>>()));
  }
  ASSERT_GE(inputs.size(), 5u);
  const auto want = torch::stack(wants);
  const auto batch = net.forward(torch::stack(inputs));
  ASSERT_EQ(batch.sizes().vec(), want.sizes().vec());
  double worst = 0;
  for (int64_t i = 0; i < want.size(0); ++i) {
    const auto one = net.forward(inputs[static_cast<size_t>(i)].unsqueeze(0))[0];
    const double d1 = (one - want[i]).abs().max().item<double>();
    const double db = (batch[i] - want[i]).abs().max().item<double>();
    worst = std::max({worst, d1, db});
    EXPECT_LT(d1, 1e-5) << fx->at("chips")[static_cast<size_t>(i)].at("name");
    EXPECT_LT(db, 1e-5) << fx->at("chips")[static_cast<size_t>(i)].at("name") << " (batched)";
    EXPECT_NEAR(want[i].norm().item<double>(), 1.0, 1e-5);  // normalised inside the graph
  }
  // Different chips give different embeddings (not a constant output).
  EXPECT_GT((want[0] - want[1]).abs().max().item<double>(), 1e-3);
  std::cout << "MobileFaceNet vs " << fx->at("reference").get<std::string>() << ": max abs diff " << std::scientific
            << worst << " over " << want.size(0) << " chips\n";
}

TEST(MobileFaceNet, InputIsCentredAndScaledRgb) {
  cv::Mat chip(112, 112, CV_8UC3);
  for (int y = 0; y < 112; ++y)
    for (int x = 0; x < 112; ++x) chip.at<cv::Vec3b>(y, x) = cv::Vec3b(x, y, (x * y) % 256);
  const auto t = mobilefacenet_input(chip);
  ASSERT_EQ(t.sizes().vec(), std::vector<int64_t>({112, 112, 3}));
  for (int y : {0, 7, 111})
    for (int x : {0, 50, 111})
      for (int c = 0; c < 3; ++c)
        EXPECT_FLOAT_EQ(t[y][x][c].item<float>(), (chip.at<cv::Vec3b>(y, x)[c] - 127.5f) / 128.0f);
  cv::Mat grey(112, 112, CV_8UC1, cv::Scalar(200));
  const auto g = mobilefacenet_input(grey);
  EXPECT_FLOAT_EQ(g.min().item<float>(), (200 - 127.5f) / 128.0f);
  EXPECT_FLOAT_EQ(g.max().item<float>(), (200 - 127.5f) / 128.0f);
  EXPECT_THROW(mobilefacenet_input(cv::Mat(100, 112, CV_8UC3)), Error);
}

// 68 landmarks from a seeded generator; five_points must average the eyes.
std::vector<cv::Point2f> mfn_landmarks(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(10.0f, 200.0f);
  std::vector<cv::Point2f> lm(68);
  for (auto& p : lm) p = cv::Point2f(u(rng), u(rng));
  return lm;
}

TEST(MobileFaceNet, ArcFaceAlignmentIsTheLeastSquaresSimilarity) {
  const auto dst = arcface_template();
  ASSERT_EQ(dst.size(), 5u);
  // insightface's arcface_dst (python-package/insightface/utils/face_align.py).
  EXPECT_DOUBLE_EQ(dst[0].x, 38.2946);
  EXPECT_DOUBLE_EQ(dst[4].y, 92.2041);
  for (uint32_t seed : {1u, 2u, 3u}) {
    const auto lm = mfn_landmarks(seed);
    const auto five = five_points(lm);
    double ex = 0, ey = 0;
    for (int i = 36; i <= 41; ++i) ex += lm[i].x, ey += lm[i].y;
    EXPECT_NEAR(five[0].x, ex / 6, 1e-4);
    EXPECT_NEAR(five[0].y, ey / 6, 1e-4);
    EXPECT_NEAR(five[2].x, lm[30].x, 1e-6);
    EXPECT_NEAR(five[3].y, lm[48].y, 1e-6);
    EXPECT_NEAR(five[4].x, lm[54].x, 1e-6);
    // Brute force: x' = a x - b y + tx, y' = b x + a y + ty by the normal
    // equations of the 10 x 4 linear least-squares problem.
    cv::Mat A(10, 4, CV_64F), rhs(10, 1, CV_64F);
    for (int i = 0; i < 5; ++i) {
      const double x = five[i].x, y = five[i].y;
      A.at<double>(2 * i, 0) = x, A.at<double>(2 * i, 1) = -y, A.at<double>(2 * i, 2) = 1, A.at<double>(2 * i, 3) = 0;
      A.at<double>(2 * i + 1, 0) = y, A.at<double>(2 * i + 1, 1) = x, A.at<double>(2 * i + 1, 2) = 0,
                            A.at<double>(2 * i + 1, 3) = 1;
      rhs.at<double>(2 * i) = dst[i].x;
      rhs.at<double>(2 * i + 1) = dst[i].y;
    }
    cv::Mat p;
    ASSERT_TRUE(cv::solve(A.t() * A, A.t() * rhs, p, cv::DECOMP_CHOLESKY));
    const double a = p.at<double>(0), b = p.at<double>(1);
    const cv::Mat want = (cv::Mat_<double>(2, 3) << a, -b, p.at<double>(2), b, a, p.at<double>(3));
    const cv::Mat got = arcface_transform(lm);
    EXPECT_LT(cv::norm(got, want, cv::NORM_INF), 1e-9) << got << "\n" << want;
  }
  // A face that is an exact similarity of the template lands on it.
  std::vector<cv::Point2f> lm(68, cv::Point2f(0, 0));
  const double s = 1.7, th = 0.3, tx = 40, ty = -12;
  auto place = [&](const cv::Point2d& q) {
    return cv::Point2f(static_cast<float>(s * (std::cos(th) * q.x - std::sin(th) * q.y) + tx),
                       static_cast<float>(s * (std::sin(th) * q.x + std::cos(th) * q.y) + ty));
  };
  for (int i = 36; i <= 41; ++i) lm[i] = place(dst[0]);
  for (int i = 42; i <= 47; ++i) lm[i] = place(dst[1]);
  lm[30] = place(dst[2]), lm[48] = place(dst[3]), lm[54] = place(dst[4]);
  const cv::Mat m = arcface_transform(lm);
  for (size_t i = 0; i < 5; ++i) {
    const auto f = five_points(lm)[i];
    EXPECT_NEAR(m.at<double>(0, 0) * f.x + m.at<double>(0, 1) * f.y + m.at<double>(0, 2), dst[i].x, 1e-4);
    EXPECT_NEAR(m.at<double>(1, 0) * f.x + m.at<double>(1, 1) * f.y + m.at<double>(1, 2), dst[i].y, 1e-4);
  }
  // The chip is norm_crop's cv2.warpAffine (bilinear, zero border) by it.
  cv::Mat image(240, 260, CV_8UC3);
  cv::randu(image, 0, 255);
  const cv::Mat chip = align_arcface(image, lm);
  ASSERT_EQ(chip.size(), cv::Size(112, 112));
  cv::Mat want;
  cv::warpAffine(image, want, m, cv::Size(112, 112), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  EXPECT_EQ(cv::norm(chip, want, cv::NORM_INF), 0.0);
  EXPECT_THROW(five_points(std::vector<cv::Point2f>(5)), Error);
}

TEST(MobileFaceNet, MissingOrAlteredFilesAreNamedWithBothHashes) {
  if (const std::string why = mfn_missing(); !why.empty()) GTEST_SKIP() << why;
  test::TempDir dir;
  const std::string src = default_mobilefacenet_dir();
  const std::string d = dir / "m";
  fs::create_directories(d);
  fs::copy_file(src + "/mobilefacenet.json", d + "/mobilefacenet.json");
  try {
    MobileFaceNet net(d);
    ADD_FAILURE() << "a missing .bin was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), d + "/mobilefacenet.bin is missing")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "scripts/mobilefacenet_model.sh")) << e.what();
  }
  std::string bin = read_file(src + "/mobilefacenet.bin");
  bin[1000] = static_cast<char>(bin[1000] ^ 1);
  write_file_atomic(d + "/mobilefacenet.bin", bin);
  try {
    MobileFaceNet net(d);
    ADD_FAILURE() << "an altered .bin was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), d + "/mobilefacenet.bin has sha256 " + sha256_hex(bin))) << e.what();
    EXPECT_TRUE(test::contains(e.what(), std::string("expected ") + kMobileFaceNetBinSha256)) << e.what();
  }
  // The pinned hashes are those of the files in the package.
  EXPECT_EQ(sha256_file(src + "/mobilefacenet.json"), kMobileFaceNetJsonSha256);
  EXPECT_EQ(sha256_file(src + "/mobilefacenet.bin"), kMobileFaceNetBinSha256);
}

TEST(MobileFaceNet, EmbedderOptionTakesNamesOrARunFolder) {
  FaceOptions o;
  set_face_embedder(o, "mobilefacenet");
  EXPECT_EQ(o.embedder_name, kMobileFaceNetName);
  EXPECT_TRUE(o.embedder_run.empty());
  set_face_embedder(o, "dlib");
  EXPECT_EQ(o.embedder_name, kFaceEmbedderName);
  set_face_embedder(o, kMobileFaceNetName);
  EXPECT_EQ(o.embedder_name, kMobileFaceNetName);
  test::TempDir dir;
  FaceOptions r;
  set_face_embedder(r, dir.path());
  EXPECT_EQ(r.embedder_run, dir.path());
  EXPECT_TRUE(r.embedder_name.empty());
  try {
    set_face_embedder(r, "mobilefacenett");
    ADD_FAILURE() << "an unknown name was accepted";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(test::contains(m, "\"mobilefacenett\" is neither an embedder name")) << m;
    EXPECT_TRUE(test::contains(m, "dlib (face-api-1.7.15/face_recognition_model, the default)")) << m;
    EXPECT_TRUE(test::contains(m, "mobilefacenet (human-models-3.0.4/mobilefacenet)")) << m;
  }
}

TEST(MobileFaceNet, GalleriesHoldTheirEmbeddersSizeAndRefuseTheOther) {
  test::TempDir dir;
  Gallery g;
  g.embedder = kMobileFaceNetName;
  g.weights_sha256 = std::string(64, 'a');
  GalleryIdentity id;
  id.name = "x";
  id.images.push_back({"a.png", std::vector<float>(192, 0.0f)});
  id.images[0].embedding[3] = 1.0f;
  update_identity_mean(id);
  g.identities.push_back(id);
  const std::string path = dir / "g.json";
  write_gallery(path, g);
  EXPECT_EQ(read_gallery(path).identities[0].mean.size(), 192u);
  // 128 values under MobileFaceNet's name: refused, naming the size.
  g.identities[0].images[0].embedding.resize(128);
  update_identity_mean(g.identities[0]);
  write_gallery(path, g);
  try {
    read_gallery(path);
    ADD_FAILURE() << "a 128-d MobileFaceNet gallery was read";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), "has 128 values (expected 192, the size of its embedder "
                                         "human-models-3.0.4/mobilefacenet)"))
        << e.what();
  }
  try {
    check_gallery_embedder(g, path, kFaceEmbedderName, std::string(64, 'b'));
    ADD_FAILURE() << "a MobileFaceNet gallery passed for face-api's embedder";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), "was made by embedder \"human-models-3.0.4/mobilefacenet\"")) << e.what();
    EXPECT_TRUE(test::contains(e.what(), "--embedder mobilefacenet")) << e.what();
  }
  g.embedder = kFaceEmbedderName;
  try {
    check_gallery_embedder(g, path, kMobileFaceNetName, std::string(64, 'b'));
    ADD_FAILURE() << "a face-api gallery passed for MobileFaceNet";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), "--embedder dlib")) << e.what();
  }
}

// The face verbs with --embedder mobilefacenet on 3 att_faces identities
// (already-cropped faces, --no-detect).
class MobileFaceNetCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = test::face_data_missing(); !why.empty()) GTEST_SKIP() << why;
    if (const std::string why = mfn_missing(); !why.empty()) GTEST_SKIP() << why;
    att_ = test::shared_data("att_faces");
    test::copy_att_faces(dir_ / "in", {1, 3}, {1, 4});
  }
  std::string probe(int s, int i) const { return att_ + "/s" + std::to_string(s) + "/" + std::to_string(i) + ".pgm"; }
  std::string att_;
  test::TempDir dir_;
};

TEST_F(MobileFaceNetCli, EveryVerbTakesItAndGalleriesOfTheOtherAreRefused) {
  using test::contains;
  using test::graft_cli;
  const std::string g = dir_ / "g.json";
  auto e = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--embedder", "mobilefacenet", "--gallery", g,
                      dir_ / "in"});
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_TRUE(contains(e.out, "enrolled 3 identities (12 images, 0 skipped)")) << e.out;
  const auto j = nlohmann::json::parse(read_file(g));
  EXPECT_EQ(j["embedder"], kMobileFaceNetName);
  EXPECT_EQ(j["weights_sha256"], sha256_hex(read_file(default_mobilefacenet_dir() + "/mobilefacenet.json") +
                                            read_file(default_mobilefacenet_dir() + "/mobilefacenet.bin")));
  EXPECT_EQ(j["identities"][0]["mean"].size(), 192u);
  EXPECT_DOUBLE_EQ(j["threshold"].get<double>(), kMobileFaceNetThreshold);

  auto id = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--json", "--embedder", "mobilefacenet",
                       "--gallery", g, probe(1, 9), probe(2, 9), probe(3, 9)});
  ASSERT_EQ(id.code, 0) << id.err;
  std::istringstream lines(id.out);
  std::string line;
  int s = 0;
  while (std::getline(lines, line)) {
    ++s;
    const auto row = nlohmann::json::parse(line);
    EXPECT_EQ(row["top"][0]["identity"], "s" + std::to_string(s)) << row.dump();
  }
  EXPECT_EQ(s, 3);

  // The default embedder (and a face-api gallery under MobileFaceNet) refused.
  auto other = graft_cli({"face", "identify", "--no-detect", "--threads", "1", "--gallery", g, probe(1, 9)});
  EXPECT_NE(other.code, 0);
  EXPECT_TRUE(contains(other.err, "was made by embedder \"human-models-3.0.4/mobilefacenet\"")) << other.err;
  EXPECT_TRUE(contains(other.err, "--embedder mobilefacenet")) << other.err;
  const std::string gd = dir_ / "gd.json";
  ASSERT_EQ(graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--gallery", gd, dir_ / "in"}).code, 0);
  auto add = graft_cli({"face", "enroll", "--no-detect", "--threads", "1", "--embedder", "mobilefacenet", "--gallery",
                        gd, dir_ / "in"});
  EXPECT_NE(add.code, 0);
  EXPECT_TRUE(contains(add.err, "was made by embedder \"face-api-1.7.15/face_recognition_model\"")) << add.err;
  EXPECT_TRUE(contains(add.err, "--embedder dlib")) << add.err;
  auto ver = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", "--embedder", "mobilefacenet",
                        "--gallery", gd, probe(1, 9), probe(1, 10)});
  EXPECT_NE(ver.code, 0);
  EXPECT_TRUE(contains(ver.err, "--embedder dlib")) << ver.err;

  auto same = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", "--embedder", "mobilefacenet",
                         probe(1, 9), probe(1, 10)});
  auto diff = graft_cli({"face", "verify", "--no-detect", "--threads", "1", "--json", "--embedder", "mobilefacenet",
                         probe(1, 9), probe(2, 10)});
  ASSERT_EQ(same.code, 0) << same.err;
  ASSERT_EQ(diff.code, 0) << diff.err;
  const auto js = nlohmann::json::parse(same.out), jd = nlohmann::json::parse(diff.out);
  EXPECT_LT(js["distance"].get<double>(), jd["distance"].get<double>());
  EXPECT_DOUBLE_EQ(js["threshold"].get<double>(), kMobileFaceNetThreshold);

  auto ev = graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--embedder", "mobilefacenet", "--data",
                       dir_ / "in", "--ks", "1,3", "--trials", "2", "--dump", dir_ / "dump.json"});
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto m = nlohmann::json::parse(ev.out);
  EXPECT_EQ(m["embedder"], kMobileFaceNetName);
  EXPECT_EQ(m["images"], 12);
  const auto dump = nlohmann::json::parse(read_file(dir_ / "dump.json"));
  EXPECT_EQ(dump["embeddings"][0].size(), 192u);

  // An --embedder that is neither a name nor a folder: a usage error listing the names.
  auto bad = graft_cli({"face", "verify", "--no-detect", "--embedder", "mobilefacenet2", probe(1, 9), probe(1, 10)});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "--embedder: \"mobilefacenet2\" is neither an embedder name (expected one of: dlib"))
      << bad.err;
}

TEST_F(MobileFaceNetCli, ScoreRanksFaceEmbeddersByLogMEOnTheirEmbeddings) {
  using test::contains;
  using test::graft_cli;
  auto r = graft_cli({"score", "--quiet", "--threads", "1", "--no-detect", "--data", dir_ / "in", "--backbones",
                      "face:dlib,face:mobilefacenet", "--out", dir_ / "score.json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(read_file(dir_ / "score.json"));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_GE(j[0]["logme"].get<double>(), j[1]["logme"].get<double>());
  for (const auto& row : j) {
    const bool mfn = row["candidate"] == "face:mobilefacenet";
    EXPECT_EQ(row["feature_dim"], mfn ? 192 : 128);
    EXPECT_EQ(row["backbone"], mfn ? kMobileFaceNetName : kFaceEmbedderName);
    // LogME of the embeddings `graft face evaluate` dumps for the same folder.
    const std::string dump = dir_ / (mfn ? "m.json" : "d.json");
    ASSERT_EQ(graft_cli({"face", "evaluate", "--no-detect", "--threads", "1", "--embedder", mfn ? "mobilefacenet" : "dlib",
                         "--data", dir_ / "in", "--ks", "1", "--trials", "1", "--dump", dump})
                  .code,
              0);
    const auto d = nlohmann::json::parse(read_file(dump));
    std::vector<float> flat;
    for (const auto& e : d["embeddings"])
      for (float v : e.get<std::vector<float>>()) flat.push_back(v);
    const auto n = static_cast<int64_t>(d["embeddings"].size());
    const auto emb = torch::tensor(flat).view({n, -1});
    const auto labels = torch::tensor(d["labels"].get<std::vector<int64_t>>());
    EXPECT_NEAR(row["logme"].get<double>(), logme(emb, labels), 1e-9) << row.dump();
  }
  auto bad = graft_cli({"score", "--quiet", "--no-detect", "--data", dir_ / "in", "--backbones", "face:arcface"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, "\"arcface\" is not a face embedder (expected face: with one of: dlib")) << bad.err;
}

}  // namespace
}  // namespace graft
