// Train a linear probe from C++: a new classifier on the features of a
// pretrained network, the first thing to try when labels are few.
//
//   train_probe DATA OUT BACKBONE WEIGHTS [TARGET_VAL_ACCURACY]
//
// DATA is a folder with one sub-folder of images per class; OUT the run
// folder to write; BACKBONE a graft backbone (`graft models`); WEIGHTS its
// source weights (a file, or "none"). Training stops early, from another
// thread's point of view, once the validation accuracy reaches the target.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <graft/graft.h>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: train_probe DATA OUT BACKBONE WEIGHTS [TARGET_VAL_ACCURACY]\n";
    return 2;
  }
  const double target = argc > 5 ? std::atof(argv[5]) : 2.0;  // > 1: never stop early
  try {
    graft::FitOptions o;
    o.task = "image";
    o.data = argv[1];
    o.out = argv[2];
    o.backbone = argv[3];
    o.weights = argv[4];
    // A linear probe: the backbone is frozen, only the new head learns, so
    // its features can be computed once and cached across epochs.
    o.strategy = "linear";
    o.epochs = 5;
    o.batch_size = 16;
    o.lr = 0.05;
    o.val_split = 0.2;  // a stratified fifth of DATA is held out to pick the best epoch
    o.overwrite = true;
    o.threads = 0;      // every core while training (the caller's count is restored)
    // Any other `graft train` option is set by its config.json key, with a
    // JSON value: here no augmentation, since the probe caches features.
    o.options = {{"augment", "\"none\""}};

    // A StopToken lets any thread end training at its next step; the run is
    // checkpointed there, and fit() with resume = true would go on.
    graft::StopToken stop;
    const graft::FitResult r = graft::fit(
        o,
        [&](const graft::EpochProgress& e) {
          std::printf("epoch %lld/%lld  loss %.4f  val_acc %.4f  %.0f images/s\n",
                      static_cast<long long>(e.epoch), static_cast<long long>(e.epochs), e.train_loss,
                      e.val_accuracy, e.items_per_second);
          if (e.val_accuracy >= target) stop.request_stop();
        },
        stop);
    std::printf("run %s: %lld epochs, best epoch %lld, val_acc %.4f%s\n", r.out.c_str(),
                static_cast<long long>(r.epochs_run), static_cast<long long>(r.best_epoch), r.best_val_accuracy,
                r.interrupted ? " (stopped early)" : "");

    // The run is a folder like any `graft train` run: evaluate it on data.
    const graft::Evaluation e = graft::evaluate(r.out, o.data);
    std::printf("accuracy on %s: %.4f (%lld images)\n", o.data.c_str(), e.accuracy,
                static_cast<long long>(e.count));
    return 0;
  } catch (const graft::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
