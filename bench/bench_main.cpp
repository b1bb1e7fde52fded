// graft_bench: the graft side of the benchmarks in bench/run.sh. Each mode
// prints one JSON line with its throughput ("rate", items per second);
// bench/run.sh runs the PyTorch side of the same recipe next to it
// (bench/torch_side.py) and writes bench/RESULTS.md.

#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>

#include <sys/syscall.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "graft/core/error.h"
#include "graft/core/runtime.h"
#include "graft/core/wait_policy.h"
#include "graft/data/image_set.h"
#include "graft/data/loader.h"
#include "graft/export/onnx.h"  // [onnx export]
#include "graft/face/nets.h"
#include "graft/models/fast.h"
#include "graft/models/int8.h"
#include "graft/models/head.h"
#include "graft/models/registry.h"
#include "graft/text/bert.h"
#include "graft/text/text_model.h"
#include "graft/train/strategy.h"

using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

nlohmann::json rate_json(const std::string& mode, int64_t items, double seconds) {
  return {{"mode", mode}, {"images", items}, {"seconds", seconds}, {"rate", items / seconds}};
}

// Seconds that `n` calls of `step` take.
double seconds_for(int n, const std::function<void()>& step) {
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) step();
  return seconds_since(t0);
}

// One optimiser step on the cross-entropy of forward() against `labels`:
// the forward pass under autocast to `precision`, the loss in fp32.
void cross_entropy_step(torch::optim::Optimizer& opt, graft::Precision precision,
                        const std::function<torch::Tensor()>& forward, const torch::Tensor& labels) {
  opt.zero_grad();
  torch::Tensor logits;
  {
    graft::Autocast autocast(precision);
    logits = forward();
  }
  torch::nn::functional::cross_entropy(logits.to(torch::kFloat32), labels).backward();
  opt.step();
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
  return rate_json("loader", images, s);
}

// Face descriptors per second (issue 21): face-api's embedder on random
// 150x150 chips (0..255), as FacePipeline::embed runs it (no gradient,
// bf16 autocast or int8 when asked for); --plain runs the TF.js graph op for op
// (FaceEmbedderImpl::set_fast(false)). --data: face-api's model folder.
nlohmann::json bench_face(const std::string& models_dir, int64_t batch, int steps, graft::Precision precision,
                          bool plain) {
  graft::FaceEmbedder net = graft::load_face_embedder(models_dir.empty() ? graft::default_face_models_dir() : models_dir);
  net->eval();
  net->set_fast(!plain);
  torch::manual_seed(0);
  const torch::Tensor x = torch::rand({batch, 3, 150, 150}) * 255;
  torch::NoGradGuard no_grad;
  // int8 (--precision int8): calibrated on the random chips themselves, as
  // infer's int8 is; the rate does not depend on the ranges.
  std::shared_ptr<graft::Int8Network> int8;
  if (precision == graft::Precision::kInt8) int8 = graft::build_face_int8(*net, graft::calibrate_face_int8(*net, {x}));
  auto step = [&] {
    if (int8) {
      int8->forward(x);
      return;
    }
    graft::Autocast autocast(precision);
    net->forward(x);
  };
  step();
  return rate_json("face", batch * steps, seconds_for(steps, step));
}

// Eval-mode forward passes per second on random input, as graft evaluates:
// channels-last, BatchNorm folded, inference mode, bf16 autocast when asked
// for. --plain runs the model as it is built (contiguous, unfolded).
nlohmann::json bench_infer(const std::string& backbone, int64_t batch, int iters,
                           graft::Precision precision, bool plain, const std::string& onnx_out = "") {
  const auto& spec = graft::find_backbone(backbone);
  graft::Backbone model = spec.make(spec.source_classes);
  model->eval();
  if (!onnx_out.empty()) {
    // [onnx export] The same network, as graft export writes it (bench/onnx.sh
    // times onnxruntime on it next to this forward).
    graft::ModelInfo info;
    info.backbone = backbone;
    info.input = spec.input;
    info.transform_input = spec.transform_input;
    for (int64_t c = 0; c < spec.source_classes; ++c) info.classes.push_back(std::to_string(c));
    graft::write_onnx_file(graft::image_model_onnx(*model, info, 1.0), onnx_out, true);
  }
  const int64_t macs = graft::count_macs(*model, spec.input);
  torch::InferenceMode guard;
  torch::Tensor x = torch::randn({batch, spec.input.channels, spec.input.size, spec.input.size});
  if (precision == graft::Precision::kInt8) {
    // As graft eval: calibrated (here on the random input itself) and built
    // before the float model is folded.
    model->set_int8(graft::build_int8(*model, graft::calibrate_int8(*model, {x})));
  }
  std::optional<graft::FoldedBatchNorm> fold;
  if (!plain) {
    graft::to_channels_last(*model);
    fold.emplace(*model, /*restore=*/false);  // as graft eval and predict
    x = graft::channels_last(x);
  }
  auto run = [&] {
    graft::Autocast autocast(precision);
    return model->forward(x);
  };
  run();  // warm-up: oneDNN primitives are created on the first call
  auto j = rate_json("infer", batch * iters, seconds_for(iters, run));
  j["macs_per_image"] = macs;
  return j;
}

// Fine-tune steps (forward, backward, SGD step) per second on random input:
// the rate at which the model consumes images. full: every layer trains;
// partial: the last stage and the head (the rest frozen, its BatchNorm in
// eval mode), as graft train --strategy partial:1.
nlohmann::json bench_train_step(const std::string& backbone, const std::string& strategy,
                                int64_t batch, int steps, graft::Precision precision, bool plain) {
  const auto& spec = graft::find_backbone(backbone);
  graft::Backbone model = spec.make(spec.source_classes);
  model->set_classifier(graft::make_head("linear", model->feature_dim(), 10));
  graft::apply_strategy(*model, graft::parse_strategy(strategy, static_cast<int>(model->stages().size())));
  graft::set_train_mode(*model);
  std::vector<torch::Tensor> trainable;
  for (auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  torch::Tensor x = torch::randn({batch, spec.input.channels, spec.input.size, spec.input.size});
  if (!plain) {
    graft::to_channels_last(*model);
    x = graft::channels_last(x);
  }
  torch::optim::SGD opt(trainable, torch::optim::SGDOptions(0.01).momentum(0.9));
  torch::Tensor y = torch::randint(0, 10, {batch}, torch::kInt64);
  auto step = [&] { cross_entropy_step(opt, precision, [&] { return model->forward(x); }, y); };
  step();  // warm-up
  return rate_json("train_step", batch * steps, seconds_for(steps, step));
}

// BERT (BertForSequenceClassification, 2 labels) on random token ids of a
// fixed length: AdamW fine-tune steps or eval-mode forward passes per second.
nlohmann::json bench_bert(const std::string& mode, const std::string& size, int64_t batch,
                          int64_t seq, int steps, graft::Precision precision,
                          const std::string& profile) {
  torch::manual_seed(0);
  const graft::BertConfig c = graft::bert_size(size);
  graft::BertClassifier model(c, 2, c.hidden_dropout_prob);
  graft::TextBatch b{torch::randint(1000, c.vocab_size, {batch, seq}, torch::kInt64),
                     torch::zeros({batch, seq}, torch::kInt64),
                     torch::ones({batch, seq}, torch::kInt64)};
  torch::Tensor y = torch::randint(0, 2, {batch}, torch::kInt64);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-4).weight_decay(0.01));
  std::function<void()> step;
  if (mode == "bert_train") {
    if (precision == graft::Precision::kInt8) throw graft::UsageError("--precision int8: for bert_infer only");
    model->train();
    step = [&] { cross_entropy_step(opt, precision, [&] { return model->forward(b); }, y); };
  } else {
    model->eval();
    // int8: the encoder's and pooler's Linear layers in dynamic int8, as
    // graft eval --precision int8 runs a BERT text run.
    if (precision == graft::Precision::kInt8) model->bert->set_dynamic_int8(true);
    step = [&] {
      torch::InferenceMode guard;
      graft::Autocast autocast(precision);
      model->forward(b);
    };
  }
  step();
  if (!profile.empty()) {
    // One step under LibTorch's profiler (a Chrome trace), outside the timing.
    torch::autograd::profiler::RecordProfile guard(profile);
    step();
  }
  return rate_json(mode, batch * steps, seconds_for(steps, step));
}

// The machine's fp32 FMA peak: independent fused multiply-adds on registers
// (12 chains hide the FMA latency), on `threads` threads at once. AVX-512
// where the CPU has it, else AVX2.
__attribute__((target("avx512f"))) int64_t fma_chains_512(int64_t iters) {
  __m512 a[12];
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int k = 0; k < 12; ++k) a[k] = _mm512_set1_ps(static_cast<float>(k));
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) a[k] = _mm512_fmadd_ps(a[k], b, c);
  float sink = 0;
  for (int k = 0; k < 12; ++k) sink += _mm512_reduce_add_ps(a[k]);
  volatile float keep = sink;
  (void)keep;
  return iters * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) int64_t fma_chains_256(int64_t iters) {
  __m256 a[12];
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int k = 0; k < 12; ++k) a[k] = _mm256_set1_ps(static_cast<float>(k));
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) a[k] = _mm256_fmadd_ps(a[k], b, c);
  alignas(32) float out[8];
  float sink = 0;
  for (int k = 0; k < 12; ++k) {
    _mm256_store_ps(out, a[k]);
    for (float v : out) sink += v;
  }
  volatile float keep = sink;
  (void)keep;
  return iters * 12 * 8 * 2;
}

// The bf16 and int8 dot-product peaks (issue 21: each precision's own
// limit): 12 independent chains of AVX512-BF16's vdpbf16ps (16 lanes x 2
// bf16 products = 64 FLOPs an instruction) or AVX512-VNNI's vpdpbusd (16
// lanes x 4 u8*s8 products = 128 integer ops an instruction).
__attribute__((target("avx512f,avx512bf16"))) int64_t dpbf16_chains(int64_t iters) {
  __m512 a[12];
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f80), c = (__m512bh)_mm512_set1_epi16(0x3380);  // 1.0, 6e-8
  for (int k = 0; k < 12; ++k) a[k] = _mm512_set1_ps(static_cast<float>(k));
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) a[k] = _mm512_dpbf16_ps(a[k], b, c);
  float sink = 0;
  for (int k = 0; k < 12; ++k) sink += _mm512_reduce_add_ps(a[k]);
  volatile float keep = sink;
  (void)keep;
  return iters * 12 * 16 * 2 * 2;
}

__attribute__((target("avx512f,avx512vnni"))) int64_t dpbusd_chains(int64_t iters) {
  __m512i a[12];
  const __m512i b = _mm512_set1_epi8(1), c = _mm512_set1_epi8(-1);
  for (int k = 0; k < 12; ++k) a[k] = _mm512_set1_epi32(k);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < 12; ++k) a[k] = _mm512_dpbusd_epi32(a[k], b, c);
  int64_t sink = 0;
  for (int k = 0; k < 12; ++k) sink += _mm512_reduce_add_epi32(a[k]);
  volatile int64_t keep = sink;
  (void)keep;
  return iters * 12 * 16 * 4 * 2;
}

// AMX (Intel Sapphire Rapids and later): tile dot products on 16x64-byte
// tiles, four accumulators (tmm0-3) fed by tmm4 (A) and tmm5-6 (B). One
// tdpbf16ps is 16x16x32 bf16 multiply-adds (16384 FLOPs), one tdpbusd
// 16x16x64 u8*s8 (32768 ops). Linux grants the tile state on request
// (arch_prctl ARCH_REQ_XCOMP_PERM). Not run on this project's machines so
// far (AMD EPYC, no AMX): the probe says so instead of a figure.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

bool request_amx() {
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

__attribute__((target("amx-tile,amx-bf16,amx-int8"))) int64_t amx_chains(int64_t iters, bool int8) {
  TileConfig cfg;
  for (int t = 0; t < 7; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
  alignas(64) static uint8_t data[16 * 64] = {};
  _tile_zero(0);  // tile numbers are immediates: no loop
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, data, 64);
  _tile_loadd(5, data, 64);
  _tile_loadd(6, data, 64);
  for (int64_t i = 0; i < iters; ++i) {
    if (int8) {
      _tile_dpbusd(0, 4, 5);
      _tile_dpbusd(1, 4, 6);
      _tile_dpbusd(2, 4, 5);
      _tile_dpbusd(3, 4, 6);
    } else {
      _tile_dpbf16ps(0, 4, 5);
      _tile_dpbf16ps(1, 4, 6);
      _tile_dpbf16ps(2, 4, 5);
      _tile_dpbf16ps(3, 4, 6);
    }
  }
  alignas(64) static thread_local int32_t out[16 * 16];
  _tile_stored(0, out, 64);
  _tile_release();
  return iters * 4 * 16 * 16 * (int8 ? 64 : 32) * 2;
}

// --isa: avx512 or avx2 (fp32 FMA), avx512_bf16, avx512_vnni, amx_bf16 or
// amx_int8. A CPU without the ISA gives "rate": null and why.
nlohmann::json bench_peak(int threads, const std::string& isa) {
  const std::string flags = graft::cpu_flags();
  const std::vector<std::string> known = {"avx512", "avx2", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"};
  if (std::find(known.begin(), known.end(), isa) == known.end())
    throw graft::UsageError("--isa: '" + isa + "' (expected avx512, avx2, avx512_bf16, avx512_vnni, amx_bf16 or amx_int8)");
  const bool amx = isa.rfind("amx", 0) == 0;
  const std::string needed = isa == "avx512" ? "avx512f" : isa;
  std::string used = isa;
  if (isa == "avx512" && !graft::flags_have_any(flags, {"avx512f"})) used = "avx2";
  if (isa != "avx512" && isa != "avx2" && !graft::flags_have_any(flags, {needed.c_str()}))
    return {{"mode", "peak"}, {"isa", isa}, {"rate", nullptr}, {"why", "this CPU has no " + needed}};
  if (amx && !request_amx())
    return {{"mode", "peak"}, {"isa", isa}, {"rate", nullptr}, {"why", "the kernel refused the AMX tile state"}};
  const int64_t iters = amx ? 20'000'000 : 2'000'000'000 / 12;
  std::atomic<int64_t> ops{0};
  auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      if (used == "avx512") ops += fma_chains_512(iters);
      else if (used == "avx2") ops += fma_chains_256(iters);
      else if (used == "avx512_bf16") ops += dpbf16_chains(iters);
      else if (used == "avx512_vnni") ops += dpbusd_chains(iters);
      else ops += amx_chains(iters, used == "amx_int8");
    });
  for (auto& t : pool) t.join();
  const double s = seconds_since(t0);
  return {{"mode", "peak"}, {"isa", used}, {"seconds", s}, {"rate", static_cast<double>(ops) / s / 1e9}};
}

}  // namespace

int main(int argc, char** argv) {
  // As the graft program does (graft/core/wait_policy.h), but libgomp is
  // already loaded here: choose, then start again once with the choice in the
  // environment (GRAFT_WAIT_POLICY marks the second start).
  if (std::getenv("GRAFT_WAIT_POLICY") == nullptr) {
    graft::apply_wait_policy();
    execv("/proc/self/exe", argv);
  }
  graft::tune_allocator();
  CLI::App app{"graft benchmarks (graft side)"};
  std::string mode = "loader", data, backbone = "resnet18", augment = "light", strategy = "full";
  std::string precision = "fp32", size = "bert-mini", isa = "avx512", profile;
  int64_t batch = 32, seq = 128;
  int workers = 2, epochs = 1, steps = 5, threads = 0;
  bool plain = false;
  app.add_option("mode", mode, "loader | infer | train_step | bert_train | bert_infer | peak | face");
  app.add_option("--data", data);
  app.add_option("--backbone", backbone);
  app.add_option("--augment", augment);
  app.add_option("--batch-size", batch);
  app.add_option("--workers", workers);
  app.add_option("--epochs", epochs);
  app.add_option("--steps", steps, "timed iterations after one warm-up");
  app.add_option("--threads", threads);
  app.add_option("--strategy", strategy, "train_step: full or partial:N");
  app.add_option("--precision", precision, "fp32, bf16 or int8 (infer only)");
  app.add_option("--size", size, "BERT size");
  app.add_option("--seq", seq, "BERT sequence length");
  app.add_option("--isa", isa, "peak: avx512 or avx2 (fp32 FMA), avx512_bf16, avx512_vnni, amx_bf16 or amx_int8");
  app.add_option("--profile", profile, "bert_*: write one step's LibTorch profile (Chrome trace) here");
  app.add_flag("--plain", plain, "infer/train_step: contiguous layout, BatchNorm not folded");
  std::string onnx_out;  // [onnx export]
  app.add_option("--onnx-out", onnx_out, "infer: also export the network to this ONNX file (bench/onnx.sh)");
  CLI11_PARSE(app, argc, argv);
  try {
    const int used_threads = graft::set_threads(threads);
    const graft::Precision p = graft::parse_precision(precision);
    nlohmann::json j;
    if (mode == "loader") j = bench_loader(data, backbone, augment, batch, workers, epochs);
    else if (mode == "infer") j = bench_infer(backbone, batch, steps, p, plain, onnx_out);
    else if (mode == "train_step") j = bench_train_step(backbone, strategy, batch, steps, p, plain);
    else if (mode == "bert_train" || mode == "bert_infer") j = bench_bert(mode, size, batch, seq, steps, p, profile);
    else if (mode == "peak") j = bench_peak(used_threads, isa);
    else if (mode == "face") j = bench_face(data, batch, steps, p, plain);
    else throw graft::UsageError("mode: '" + mode + "' (expected loader, infer, train_step, bert_train, bert_infer, peak or face)");
    j["threads"] = torch::get_num_threads();
    j["wait_policy"] = graft::wait_policy_report();
    std::cout << j.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
