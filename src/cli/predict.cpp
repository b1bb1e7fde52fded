// graft predict: top-k labels with probabilities for image files, or for
// lines of text with a text run.

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/runtime.h"
#include "graft/data/image_set.h"
#include "graft/data/transforms.h"
#include "graft/face/face_train.h"
#include "graft/models/fast.h"
#include "graft/models/saved_model.h"
#include "graft/text/text_model.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct PredictOptions {
  std::string run;
  std::vector<std::string> inputs;
  int top_k = 5;
  int threads = 0;
  bool json = false;
  std::string precision = "fp32";
};

void print_top(const std::string& input, const std::string* text, const torch::Tensor& logits,
               const std::vector<std::string>& classes, int64_t k, bool json) {
  torch::Tensor probs = torch::softmax(logits, 0);
  auto [p, idx] = probs.topk(k);
  if (json) {
    nlohmann::ordered_json j;
    j["input"] = input;
    if (text) j["text"] = *text;
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (int64_t i = 0; i < k; ++i)
      top.push_back({{"label", classes[idx[i].item<int64_t>()]}, {"probability", p[i].item<double>()}});
    j["top"] = top;
    std::cout << j.dump() << "\n";
  } else {
    std::cout << input;
    for (int64_t i = 0; i < k; ++i)
      std::cout << "\t" << classes[idx[i].item<int64_t>()] << " " << std::fixed << std::setprecision(4)
                << p[i].item<double>();
    std::cout << "\n";
  }
}

// An input must be a file: a folder (or a device) is an error of its own,
// and the other inputs are still predicted.
void check_input_file(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  GRAFT_CHECK(std::filesystem::exists(st), "'", path, "' does not exist (expected a file)");
  GRAFT_CHECK(!std::filesystem::is_directory(st), "'", path,
              "' is a folder (expected a file; give the files in it, e.g. ", path, "/*)");
  GRAFT_CHECK(std::filesystem::is_regular_file(st), "'", path, "' is not a regular file");
}

// Text runs: every line of every input file ("-": standard input) is one
// text; for a model of text pairs, a tab separates the two texts.
int run_text_predict(const PredictOptions& o) {
  TextModel model = load_text_model(o.run);
  const auto& classes = model.info.classes;
  const int64_t k = std::min<int64_t>(o.top_k, static_cast<int64_t>(classes.size()));
  std::vector<std::string> names, texts;
  std::vector<EncodedText> inputs;
  int failures = 0;
  for (const auto& path : o.inputs) {
    std::string data;
    try {
      if (path == "-") {
        std::ostringstream ss;
        ss << std::cin.rdbuf();
        data = ss.str();
      } else {
        check_input_file(path);
        data = read_file(path);
      }
    } catch (const Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++failures;
      continue;
    }
    std::istringstream lines(data);
    std::string line;
    for (int64_t n = 1; std::getline(lines, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const std::string name = str_cat(path == "-" ? "stdin" : path, ":", n);
      std::string a = line, b;
      if (model.info.pairs) {
        size_t tab = line.find('\t');
        if (tab == std::string::npos) {
          std::cerr << "error: " << name << ": no tab (the model reads text pairs: TEXT<TAB>TEXT)\n";
          ++failures;
          continue;
        }
        a = line.substr(0, tab);
        b = line.substr(tab + 1);
      }
      if (a.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
      try {
        inputs.push_back(model.encode(a, b));
      } catch (const Error& e) {
        std::cerr << "error: " << name << ": " << e.what() << "\n";
        ++failures;
        continue;
      }
      names.push_back(name);
      texts.push_back(line);
    }
  }
  torch::Tensor logits = model.logits(inputs);
  for (size_t i = 0; i < inputs.size(); ++i)
    print_top(names[i], &texts[i], logits[static_cast<int64_t>(i)], classes, k, o.json);
  std::cout.flush();
  GRAFT_CHECK(failures == 0, failures, " inputs could not be read or classified");
  return 0;
}

// Face runs (graft train --task face): the largest face of each image, found,
// aligned and embedded as in training, then the run's head. A nearest-centroid
// head ranks identities by distance, a linear head by probability.
int run_face_predict(const PredictOptions& o) {
  const FaceClassifier c = load_face_classifier(o.run);
  FacePipeline pipeline(face_run_options(o.run));
  const int64_t k = std::min<int64_t>(o.top_k, static_cast<int64_t>(c.classes.size()));
  int failures = 0;
  torch::NoGradGuard no_grad;
  for (const auto& path : o.inputs) {
    torch::Tensor e;
    try {
      check_input_file(path);
      e = pipeline.embed_file(path);
    } catch (const Error& err) {
      std::cerr << "error: " << err.what() << "\n";
      ++failures;
      continue;
    }
    const torch::Tensor scores = c.scores(e.unsqueeze(0))[0];
    if (c.head != "centroid") {
      print_top(path, nullptr, scores, c.classes, k, o.json);
      continue;
    }
    auto [top, idx] = scores.topk(k);  // scores are negative distances
    nlohmann::ordered_json j{{"input", path}, {"top", nlohmann::ordered_json::array()}};
    if (!o.json) std::cout << path;
    for (int64_t i = 0; i < k; ++i) {
      const auto& label = c.classes[static_cast<size_t>(idx[i].item<int64_t>())];
      const double distance = -top[i].item<double>();
      if (o.json) j["top"].push_back({{"label", label}, {"distance", distance}});
      else std::cout << "\t" << label << " " << std::fixed << std::setprecision(4) << distance;
    }
    std::cout << (o.json ? j.dump() : "") << "\n";
  }
  std::cout.flush();
  GRAFT_CHECK(failures == 0, failures, " of ", o.inputs.size(), " inputs had no usable face or could not be read");
  return 0;
}

int run_predict(const PredictOptions& o) {
  set_threads(o.threads);
  GRAFT_CHECK_USAGE(o.top_k >= 1, "--top-k: ", o.top_k, " (expected at least 1)");
  const Precision requested = parse_precision(o.precision);
  if (saved_model_task(o.run) == "text") {
    if (requested != Precision::kFp32)
      std::cerr << "warning: --precision " << o.precision << " is for image runs; " << o.run
                << " is a text run and is predicted in fp32\n";
    return run_text_predict(o);
  }
  if (saved_model_task(o.run) == "face") return run_face_predict(o);
  LoadedModel loaded = load_model(o.run);
  const auto& classes = loaded.info.classes;
  const int64_t k = std::min<int64_t>(o.top_k, static_cast<int64_t>(classes.size()));
  int failures = 0;
  const Precision precision = resolve_precision(requested, std::cerr);
  torch::InferenceMode guard;
  loaded.model->eval();
  to_channels_last(*loaded.model);
  FoldedBatchNorm fold(*loaded.model, /*restore=*/false);  // never saved here
  for (const auto& path : o.inputs) {
    cv::Mat img;
    try {
      check_input_file(path);
      img = load_image(path);
    } catch (const Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++failures;
      continue;
    }
    torch::Tensor x = channels_last(eval_transform(img, loaded.info.input).unsqueeze(0));
    torch::Tensor logits;
    {
      Autocast autocast(precision);
      logits = loaded.model->forward(x)[0].to(torch::kFloat32);
    }
    print_top(path, nullptr, logits, classes, k, o.json);
  }
  std::cout.flush();
  GRAFT_CHECK(failures == 0, failures, " of ", o.inputs.size(), " inputs could not be read");
  return 0;
}

}  // namespace

void add_predict(CLI::App& app, Action& run) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* sub = app.add_subcommand("predict", "Top-k labels with probabilities for images, or for lines of text (text runs); face runs: identities of the largest face");
  sub->add_option("run", o->run, "Run directory written by graft train")->required();
  sub->add_option("inputs", o->inputs, "Image files; text runs: text files, one text per line (- : stdin)")->required();
  sub->add_option("--top-k", o->top_k, "Labels per input")->capture_default_str();
  sub->add_flag("--json", o->json, "One JSON object per input");
  add_threads(*sub, o->threads);
  add_max_pixels(*sub);
  add_precision(*sub, o->precision);
  sub->callback([&run, o] { run = [o] { return run_predict(*o); }; });
}

}  // namespace graft::cli
