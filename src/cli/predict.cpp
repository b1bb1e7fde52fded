// graft predict: top-k labels with probabilities for image files.

#include <iomanip>
#include <iostream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/runtime.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/models/saved_model.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct PredictOptions {
  std::string run;
  std::vector<std::string> inputs;
  int top_k = 5;
  int threads = 0;
  bool json = false;
};

int run_predict(const PredictOptions& o) {
  set_threads(o.threads);
  LoadedModel loaded = load_model(o.run);
  const auto& classes = loaded.info.classes;
  const int64_t k = std::min<int64_t>(o.top_k, static_cast<int64_t>(classes.size()));
  GRAFT_CHECK_USAGE(o.top_k >= 1, "--top-k: ", o.top_k, " (expected at least 1)");
  int failures = 0;
  torch::InferenceMode guard;
  for (const auto& path : o.inputs) {
    cv::Mat img;
    try {
      img = load_image(path);
    } catch (const Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++failures;
      continue;
    }
    torch::Tensor x = eval_transform(img, loaded.info.input).unsqueeze(0);
    torch::Tensor probs = torch::softmax(loaded.model->forward(x), 1)[0];
    auto [p, idx] = probs.topk(k);
    if (o.json) {
      nlohmann::ordered_json j;
      j["input"] = path;
      nlohmann::ordered_json top = nlohmann::ordered_json::array();
      for (int64_t i = 0; i < k; ++i)
        top.push_back({{"label", classes[idx[i].item<int64_t>()]}, {"probability", p[i].item<double>()}});
      j["top"] = top;
      std::cout << j.dump() << "\n";
    } else {
      std::cout << path;
      for (int64_t i = 0; i < k; ++i)
        std::cout << "\t" << classes[idx[i].item<int64_t>()] << " " << std::fixed
                  << std::setprecision(4) << p[i].item<double>();
      std::cout << "\n";
    }
  }
  std::cout.flush();
  GRAFT_CHECK(failures == 0, failures, " of ", o.inputs.size(), " inputs could not be read");
  return 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& run) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub = app.add_subcommand("predict", "Top-k labels with probabilities for images");
  sub->add_option("run", o->run, "Run directory written by graft train")->required();
  sub->add_option("inputs", o->inputs, "Image files")->required();
  sub->add_option("--top-k", o->top_k, "Labels per input")->capture_default_str();
  sub->add_flag("--json", o->json, "One JSON object per input");
  add_threads(*sub, o->threads);
  sub->callback([&run, o] { run = [o] { return run_predict(*o); }; });
}

}  // namespace graft::cli
