#include "graft/data/loader.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "graft/core/error.h"
#include "graft/core/progress.h"
#include "graft/core/runtime.h"
#include "graft/data/order.h"

namespace graft {
namespace {

/// A made batch, or why it could not be made.
struct Made {
  std::optional<Batch> batch;       // nullopt when every sample failed
  std::vector<UnreadableImage> failed;  // samples left out, and why
  std::exception_ptr error;         // strict mode, or a non-decode error
};

}  // namespace

struct Loader::State {
  ImageSet set;
  InputSpec spec;
  LoaderOptions options;
  std::vector<size_t> order;  // positions in the set, in epoch order
  int64_t num_batches = 0;

  // Consumer side.
  int64_t next_batch = 0;
  int64_t skipped = 0;
  std::vector<int64_t> skipped_by_class;  // indexed by label
  std::vector<UnreadableImage> failures;
  bool warned = false;

  // Shared with the workers, under `mutex`.
  std::mutex mutex;
  std::condition_variable work_cv;   // a batch was consumed, or stop
  std::condition_variable ready_cv;  // a batch was made
  int64_t claimed = 0;               // batches handed to workers so far
  std::map<int64_t, Made> ready;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;

  Made make(int64_t k);
  void work();
};

Made Loader::State::make(int64_t k) {
  Made made;
  const int64_t bs = options.batch_size;
  const int64_t begin = k * bs;
  const int64_t end = std::min<int64_t>(begin + bs, int64_t(order.size()));
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  std::vector<size_t> positions;
  images.reserve(end - begin);
  for (int64_t i = begin; i < end; ++i) {
    if (stop.load(std::memory_order_relaxed)) return made;  // the loader is going away
    const size_t pos = order[i];
    // The stream of a sample depends on (seed, epoch, its position in the set)
    // only; +1 keeps it apart from the epoch's shuffle stream, mix_seed(seed, epoch).
    std::mt19937_64 rng(mix_seed(options.seed, uint64_t(options.epoch), uint64_t(pos) + 1));
    cv::Mat img;
    try {
      img = set.load(pos);
    } catch (const Error& e) {
      if (options.strict) {
        made.error = std::current_exception();
        return made;
      }
      made.failed.push_back(unreadable_image(e, set.identity(pos), set.samples[pos].label));
      continue;
    }
    try {
      images.push_back(options.tta == Tta::None ? train_transform(img, spec, options.augment, rng)
                                                : eval_views(img, spec, options.tta));
    } catch (...) {
      made.error = std::current_exception();
      return made;
    }
    labels.push_back(set.samples[pos].label);
    positions.push_back(pos);
  }
  if (images.empty()) return made;
  const auto& first = images.front();
  Batch b;
  std::vector<int64_t> shape{int64_t(images.size())};
  for (int64_t d : first.sizes()) shape.push_back(d);
  b.images = torch::empty(shape, torch::kFloat32);
  // Plain copies: torch::stack would start LibTorch's thread pool from every
  // worker.
  const size_t n = size_t(first.numel());
  float* dst = b.images.data_ptr<float>();
  for (size_t i = 0; i < images.size(); ++i) {
    std::memcpy(dst + i * n, images[i].data_ptr<float>(), n * sizeof(float));
  }
  b.labels = torch::tensor(labels, torch::kInt64);
  b.positions = std::move(positions);
  made.batch = std::move(b);
  return made;
}

void Loader::State::work() {
  for (;;) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lock(mutex);
      work_cv.wait(lock, [&] {
        return stop.load() || claimed >= num_batches ||
               claimed < next_batch + options.prefetch;
      });
      if (stop.load() || claimed >= num_batches) return;
      k = claimed++;
    }
    Made made;
    try {
      made = make(k);
    } catch (...) {
      made = Made();
      made.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      ready.emplace(k, std::move(made));
    }
    ready_cv.notify_all();
  }
}

Loader::Loader(ImageSet set, InputSpec spec, LoaderOptions options)
    : state_(std::make_unique<State>()) {
  GRAFT_CHECK(options.batch_size > 0, "batch size ", options.batch_size, " (expected > 0)");
  GRAFT_CHECK(options.workers >= 0, "loader workers ", options.workers, " (expected >= 0)");
  GRAFT_CHECK(options.epoch >= 0, "epoch ", options.epoch, " (expected >= 0)");
  GRAFT_CHECK(options.tta == Tta::None || options.augment == Augment::None,
              "loader: test-time augmentation with training augmentation ", to_string(options.augment));
  options.prefetch = std::max(options.prefetch, 1);
  State& s = *state_;
  s.set = std::move(set);
  s.skipped_by_class.assign(s.set.classes.size(), 0);
  s.spec = spec;
  s.options = options;
  // The same order as the feature-cache path (epoch_order), so both see the
  // same batches.
  s.order = options.order.empty()
                ? epoch_order(s.set.size(), options.seed, options.epoch, options.shuffle)
                : options.order;
  for (size_t p : s.order)
    GRAFT_CHECK(p < s.set.size(), "loader order: position ", p, " (expected below the set size ",
                s.set.size(), ")");
  const size_t skip = std::min(s.order.size(), size_t(std::max<int64_t>(0, options.start_batch)) *
                                                   size_t(options.batch_size));
  s.order.erase(s.order.begin(), s.order.begin() + skip);
  const int64_t n = int64_t(s.order.size());
  s.num_batches = options.drop_last ? n / options.batch_size
                                    : (n + options.batch_size - 1) / options.batch_size;
  // Workers beyond the prefetch window would only wait.
  const int workers = std::min<int64_t>(options.workers, std::min<int64_t>(options.prefetch, s.num_batches));
  for (int i = 0; i < workers; ++i) s.threads.emplace_back([&s] { s.work(); });
}

Loader::~Loader() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop.store(true);
  }
  state_->work_cv.notify_all();
  for (auto& t : state_->threads) t.join();
}

std::optional<Batch> Loader::next() {
  State& s = *state_;
  while (s.next_batch < s.num_batches) {
    const int64_t k = s.next_batch;
    Made made;
    if (s.threads.empty()) {
      made = s.make(k);
      ++s.next_batch;
    } else {
      {
        std::unique_lock<std::mutex> lock(s.mutex);
        s.ready_cv.wait(lock, [&] { return s.ready.count(k) > 0; });
        made = std::move(s.ready.at(k));
        s.ready.erase(k);
        ++s.next_batch;
      }
      s.work_cv.notify_all();
    }
    if (made.error) std::rethrow_exception(made.error);
    if (!made.failed.empty()) {
      s.skipped += int64_t(made.failed.size());
      for (const UnreadableImage& u : made.failed) s.skipped_by_class.at(size_t(u.label)) += 1;
      if (!s.warned) {
        s.warned = true;
        log_warn(str_cat(made.failed.front().message,
                         "; the sample is left out (later failures are only counted)"));
      }
      s.failures.insert(s.failures.end(), made.failed.begin(), made.failed.end());
    }
    if (made.batch) return std::move(made.batch);
  }
  return std::nullopt;
}

int64_t Loader::num_batches() const { return state_->num_batches; }

int64_t Loader::skipped() const { return state_->skipped; }

std::vector<int64_t> Loader::skipped_per_class() const { return state_->skipped_by_class; }

const std::vector<UnreadableImage>& Loader::failures() const { return state_->failures; }

}  // namespace graft
