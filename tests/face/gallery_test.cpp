// Galleries: written and read back unchanged; hand edits that would make
// distances meaningless (other sizes, non-finite values, deep nesting) are
// errors naming the gallery file.

#include "graft/face/gallery.h"

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "graft/core/json.h"
#include "test_util.h"

namespace graft {
namespace {

Gallery two_people() {
  Gallery g;
  g.embedder = "face-api";
  g.weights_sha256 = "abc";
  g.threshold = 0.6;
  for (int p = 0; p < 2; ++p) {
    GalleryIdentity id;
    id.name = "person" + std::to_string(p);
    for (int i = 0; i < 2; ++i) {
      std::vector<float> e(kFaceEmbeddingDim, 0.0f);
      e[static_cast<size_t>(p * 10 + i)] = 1.0f;
      id.images.push_back({id.name + "/" + std::to_string(i) + ".png", e});
    }
    update_identity_mean(id);
    g.identities.push_back(id);
  }
  return g;
}

TEST(FaceGallery, RoundTrips) {
  test::TempDir dir;
  Gallery g = two_people();
  write_gallery(dir / "g.json", g);
  Gallery back = read_gallery(dir / "g.json");
  ASSERT_EQ(back.identities.size(), 2u);
  EXPECT_EQ(back.identities[1].name, "person1");
  EXPECT_EQ(back.identities[1].images[1].embedding, g.identities[1].images[1].embedding);
  EXPECT_EQ(back.identities[0].mean, g.identities[0].mean);
}

TEST(FaceGallery, HandEditedSizesAndValuesNameTheFile) {
  test::TempDir dir;
  write_gallery(dir / "g.json", two_people());
  auto j = read_json_file(dir / "g.json");
  // Every vector cut to 64 values: consistent, but not the embedder's size.
  for (auto& id : j["identities"]) {
    id["mean"] = std::vector<float>(64, 0.1f);
    for (auto& im : id["images"]) im["embedding"] = std::vector<float>(64, 0.1f);
  }
  write_file_atomic(dir / "g64.json", j.dump());
  std::string msg = test::error_of([&] { read_gallery(dir / "g64.json"); });
  EXPECT_NE(msg.find("gallery " + dir / "g64.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("has 64 values (expected 128"), std::string::npos) << msg;
  // One image of another size among 128-d ones.
  j = read_json_file(dir / "g.json");
  j["identities"][1]["images"][0]["embedding"] = std::vector<float>(64, 0.1f);
  write_file_atomic(dir / "mixed.json", j.dump());
  msg = test::error_of([&] { read_gallery(dir / "mixed.json"); });
  EXPECT_NE(msg.find("the embedding of 'person1/0.png' (identity 'person1') has 64 values"),
            std::string::npos)
      << msg;
  // A NaN (written as null by nlohmann) is refused too.
  j = read_json_file(dir / "g.json");
  j["identities"][0]["mean"][3] = "x";
  write_file_atomic(dir / "text.json", j.dump());
  msg = test::error_of([&] { read_gallery(dir / "text.json"); });
  EXPECT_NE(msg.find("gallery " + dir / "text.json"), std::string::npos) << msg;
}

}  // namespace
}  // namespace graft
