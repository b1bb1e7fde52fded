#include "graft/train/checkpoint.h"

#include <cmath>
#include <limits>

#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/weights/safetensors.h"
#include "graft/weights/state_dict.h"

namespace graft {

std::string metrics_csv(const std::vector<EpochRow>& rows) {
  std::ostringstream os;
  // issue 19: the domain classifier's and the kept pseudo-labels' columns,
  // only for runs that have them.
  bool domain = false, kept = false;
  for (const auto& r : rows) {
    domain = domain || !std::isnan(r.domain_accuracy);
    kept = kept || !std::isnan(r.unlabeled_kept);
  }
  os << "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,items_per_second"
     << (domain ? ",domain_accuracy" : "") << (kept ? ",unlabeled_kept" : "") << '\n';
  for (const auto& r : rows) {
    os << r.epoch << ',' << r.train_loss << ',' << r.train_accuracy << ',' << r.val_loss << ','
       << r.val_accuracy << ',' << r.lr << ',' << r.seconds << ',' << r.items_per_second;
    if (domain) os << ',' << r.domain_accuracy;
    if (kept) os << ',' << r.unlabeled_kept;
    os << '\n';
  }
  return os.str();
}

std::string checkpoint_path(const std::string& run_dir) {
  return run_dir + "/checkpoint/last.safetensors";
}

namespace {

nlohmann::json rows_to_json(const std::vector<EpochRow>& rows) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : rows) {
    a.push_back({r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy, r.lr,
                 r.seconds, r.items_per_second});
    // issue 19: [8] the domain accuracy (null: none), [9] the kept pseudo-labels.
    if (!std::isnan(r.domain_accuracy) || !std::isnan(r.unlabeled_kept))
      a.back().push_back(std::isnan(r.domain_accuracy) ? nlohmann::json() : nlohmann::json(r.domain_accuracy));
    if (!std::isnan(r.unlabeled_kept)) a.back().push_back(r.unlabeled_kept);
  }
  return a;
}

// JSON has no NaN: a run without validation stores its val columns as null.
double number(const nlohmann::json& v) {
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

std::vector<EpochRow> rows_from_json(const nlohmann::json& a) {
  std::vector<EpochRow> rows;
  for (const auto& v : a) {
    rows.push_back({v[0].get<int64_t>(), number(v[1]), number(v[2]), number(v[3]), number(v[4]),
                    number(v[5]), number(v[6]), number(v[7])});
    if (v.size() > 8) rows.back().domain_accuracy = number(v[8]);  // issue 19
    if (v.size() > 9) rows.back().unlabeled_kept = number(v[9]);
  }
  return rows;
}

}  // namespace

void save_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, const TrainerState& state) {
  TensorList tensors;
  for (auto& [name, t] : state_dict(model)) tensors.emplace_back("model." + name, t);
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::ostringstream os;
  archive.save_to(os);
  std::string bytes = os.str();
  torch::Tensor blob = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(blob.data_ptr(), bytes.data(), bytes.size());
  tensors.emplace_back("optimizer", blob);
  tensors.emplace_back("torch_rng_state", at::detail::getDefaultCPUGenerator().get_state());
  nlohmann::json meta = {{"epochs_done", state.epochs_done},
                         {"best_epoch", state.best_epoch},
                         {"best_accuracy", state.best_accuracy},
                         {"bad_epochs", state.bad_epochs},
                         {"rows", rows_to_json(state.rows)},
                         {"step_in_epoch", state.step_in_epoch},
                         {"loss_sum", state.loss_sum},
                         {"correct", state.correct},
                         {"seen", state.seen},
                         {"seconds", state.seconds}};
  make_dirs(run_dir + "/checkpoint");
  save_safetensors(checkpoint_path(run_dir), tensors, {{"graft_trainer_state", meta.dump()}});
}

TrainerState load_checkpoint(const std::string& run_dir, torch::nn::Module& model,
                             torch::optim::Optimizer& optimizer) {
  const std::string path = checkpoint_path(run_dir);
  SafetensorsFile f = load_safetensors(path);
  TensorList model_tensors;
  torch::Tensor blob, rng;
  for (auto& [name, t] : f.tensors) {
    if (name.rfind("model.", 0) == 0) model_tensors.emplace_back(name.substr(6), t);
    if (name == "optimizer") blob = t;
    if (name == "torch_rng_state") rng = t;
  }
  GRAFT_CHECK(blob.defined(), path, ": no optimizer state (not a graft checkpoint)");
  LoadReport report = load_state_dict(model, model_tensors);
  GRAFT_CHECK(report.clean(), path, " does not match the run's model: ", report.summary());
  std::istringstream is(std::string(static_cast<const char*>(blob.data_ptr()), blob.numel()));
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(is);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error(str_cat(path, ": optimizer state unreadable (", e.what_without_backtrace(), ")"));
  }
  auto it = f.metadata.find("graft_trainer_state");
  GRAFT_CHECK(it != f.metadata.end(), path, ": no trainer state (not a graft checkpoint)");
  TrainerState s;
  try {
    auto j = parse_json(it->second, path + " (trainer state)");
    s.epochs_done = j.at("epochs_done").get<int64_t>();
    s.best_epoch = j.at("best_epoch").get<int64_t>();
    s.best_accuracy = number(j.at("best_accuracy"));
    s.bad_epochs = j.at("bad_epochs").get<int64_t>();
    s.rows = rows_from_json(j.at("rows"));
    s.step_in_epoch = j.value("step_in_epoch", int64_t{0});
    s.loss_sum = j.value("loss_sum", 0.0);
    s.correct = j.value("correct", int64_t{0});
    s.seen = j.value("seen", int64_t{0});
    s.seconds = j.value("seconds", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(path, ": trainer state malformed (", e.what(), ")"));
  }
  if (rng.defined()) {
    try {
      at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle
      gen.set_state(rng);
    } catch (const c10::Error& e) {
      throw Error(str_cat(path, ": random generator state unreadable (", e.what_without_backtrace(), ")"));
    }
  }
  return s;
}

}  // namespace graft
