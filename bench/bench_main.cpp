// graft_bench: the graft side of the benchmarks in bench/run.sh. Each mode
// prints one JSON line with its throughput; bench/run.sh runs the PyTorch side
// of the same recipe next to it and writes bench/RESULTS.md.

#include <chrono>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/core/runtime.h"
#include "graft/data/image_set.h"
#include "graft/data/loader.h"
#include "graft/models/registry.h"
#include "graft/train/strategy.h"

using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Decoded + augmented images per second over `epochs` passes.
nlohmann::json bench_loader(const std::string& data, const std::string& backbone,
                            const std::string& augment, int64_t batch, int workers, int epochs) {
  graft::ImageSet set = graft::open_image_set(data);
  const auto& spec = graft::find_backbone(backbone);
  int64_t images = 0;
  auto t0 = Clock::now();
  for (int e = 0; e < epochs; ++e) {
    graft::LoaderOptions o;
    o.batch_size = batch;
    o.shuffle = true;
    o.augment = graft::parse_augment(augment);
    o.epoch = e;
    o.workers = workers;
    graft::Loader loader(set, spec.input, o);
    while (auto b = loader.next()) images += b->images.size(0);
  }
  double s = seconds_since(t0);
  return {{"mode", "loader"}, {"images", images}, {"seconds", s}, {"images_per_second", images / s}};
}

// Full fine-tune steps (forward, backward, SGD step) per second on random
// input: the rate at which the model consumes images.
nlohmann::json bench_train_step(const std::string& backbone, int64_t batch, int steps) {
  const auto& spec = graft::find_backbone(backbone);
  graft::Backbone model = spec.make(spec.source_classes);
  model->set_classifier(graft::make_head("linear", model->feature_dim(), 10));
  model->train();
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  torch::Tensor x = torch::randn({batch, spec.input.channels, spec.input.size, spec.input.size});
  torch::Tensor y = torch::randint(0, 10, {batch}, torch::kInt64);
  auto step = [&] {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    opt.step();
  };
  step();  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  double s = seconds_since(t0);
  return {{"mode", "train_step"}, {"images", batch * steps}, {"seconds", s},
          {"images_per_second", batch * steps / s}};
}

}  // namespace

int main(int argc, char** argv) {
  graft::tune_allocator();
  CLI::App app{"graft benchmarks (graft side)"};
  std::string mode = "loader", data, backbone = "resnet18", augment = "light";
  int64_t batch = 32;
  int workers = 2, epochs = 1, steps = 5, threads = 0;
  app.add_option("mode", mode, "loader | train_step");
  app.add_option("--data", data);
  app.add_option("--backbone", backbone);
  app.add_option("--augment", augment);
  app.add_option("--batch-size", batch);
  app.add_option("--workers", workers);
  app.add_option("--epochs", epochs);
  app.add_option("--steps", steps);
  app.add_option("--threads", threads);
  CLI11_PARSE(app, argc, argv);
  try {
    graft::set_threads(threads);
    nlohmann::json j = mode == "loader" ? bench_loader(data, backbone, augment, batch, workers, epochs)
                                        : bench_train_step(backbone, batch, steps);
    j["threads"] = torch::get_num_threads();
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
