// Classify images with a run that graft trained.
//
//   classify RUN IMAGE...
//
// prints, for each image, its label and the calibrated probability of the
// three best classes, one line each:
//   IMAGE<TAB>LABEL<TAB>CLASS PROB<TAB>CLASS PROB<TAB>CLASS PROB
#include <cstdio>
#include <iostream>

#include <opencv2/imgcodecs.hpp>

#include <graft/graft.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: classify RUN IMAGE...\n";
    return 2;
  }
  try {
    // The library leaves the process's settings alone unless asked. A
    // program that does nothing but inference asks for every core (LibTorch
    // would take half) and for the allocator tuning that keeps big
    // activations from being mapped and faulted in on every layer.
    graft::set_threads(0);
    graft::tune_allocator();

    // A run folder holds everything needed to answer: the network, the
    // classes, the preprocessing (size, crop, mean/std) and the calibration
    // fitted on the validation set, so the probabilities mean what they say.
    const graft::Model model = graft::Model::load(argv[1]);
    std::cerr << "classes:";
    for (const std::string& c : model.classes()) std::cerr << " " << c;
    std::cerr << "\n";

    // Images can come as files (read as `graft predict` reads them) or as
    // cv::Mat that the program already holds, in OpenCV's BGR order. Both
    // give the same answer; here the second way, to show it.
    std::vector<cv::Mat> images;
    for (int i = 2; i < argc; ++i) images.push_back(cv::imread(argv[i], cv::IMREAD_UNCHANGED));
    const std::vector<graft::Prediction> answers = model.predict(images, /*top_k=*/3);

    int failed = 0;
    for (size_t i = 0; i < answers.size(); ++i) {
      const graft::Prediction& p = answers[i];
      // An unreadable input gets an error of its own; the others are answered.
      if (!p.error.empty()) {
        std::cerr << argv[i + 2] << ": " << p.error << "\n";
        ++failed;
        continue;
      }
      // answer() is the best label, or "unknown" when the run was trained
      // with a reject threshold and the model is not confident enough.
      std::printf("%s\t%s", argv[i + 2], p.answer().c_str());
      for (const graft::Label& l : p.top) std::printf("\t%s %.6f", l.label.c_str(), l.probability);
      std::printf("\n");
    }
    return failed ? 1 : 0;
  } catch (const graft::UsageError& e) {  // a bad argument: exit 2, as graft does
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
