// Identify faces against a gallery, as a door camera or a photo organiser
// would.
//
//   face_identify [--no-detect] GALLERY PEOPLE_FOLDER IMAGE...
//
// --no-detect: the images are faces already cropped (as in the AT&T set).
// PEOPLE_FOLDER has one sub-folder of photos per person. Each is enrolled
// into the gallery file GALLERY (created, or updated), then every IMAGE is
// matched against it:
//   IMAGE<TAB>IDENTITY<TAB>DISTANCE
#include <cstdio>
#include <iostream>
#include <string>

#include <opencv2/imgcodecs.hpp>

#include <graft/graft.h>

int main(int argc, char** argv) {
  graft::FaceSettings settings;
  if (argc > 1 && std::string(argv[1]) == "--no-detect") {
    settings.detect = false;
    ++argv;
    --argc;
  }
  if (argc < 4) {
    std::cerr << "usage: face_identify [--no-detect] GALLERY PEOPLE_FOLDER IMAGE...\n";
    return 2;
  }
  try {
    // face-api's networks: a detector, a landmark net to align the face and
    // a ResNet that maps it to 128 numbers. Photos of one person land close
    // together, so recognising needs no training: only a gallery of
    // embeddings. (settings.models_dir "" = where scripts/face_models.sh
    // put them.)
    graft::set_threads(0);  // every core (LibTorch alone would take half)
    const graft::FaceRecognizer faces(settings);

    // Enrolment: each person's photos are embedded and averaged. The gallery
    // is a JSON file, rewritten atomically, so enrolling more people later
    // adds to it.
    const int enrolled = faces.enroll(argv[1], argv[2]);
    std::cerr << "enrolled " << enrolled << " people into " << argv[1] << "\n";

    // Identification: the nearest person's mean embedding, or "unknown" when
    // even the nearest is further than the gallery's threshold (0.38 by
    // default: at that distance face-api's embeddings rarely confuse two
    // people).
    for (int i = 3; i < argc; ++i) {
      const cv::Mat image = cv::imread(argv[i], cv::IMREAD_UNCHANGED);
      const graft::FaceMatch m = faces.identify(argv[1], image, /*top_k=*/1);
      std::printf("%s\t%s\t%.6f\n", argv[i], m.identity.c_str(), m.distance);
    }
    return 0;
  } catch (const graft::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
