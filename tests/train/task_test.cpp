// The task table (train/task.h): lookups by name, by pretraining name and
// by run folder, and each row's defaults and checks.

#include "graft/train/task.h"

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "graft/core/files.h"
#include "test_util.h"

namespace graft {
namespace {

TEST(TaskTable, NamesAreUniqueAndLookupsNameWhatThereIs) {
  std::set<std::string> names;
  for (const auto& t : task_table()) {
    EXPECT_TRUE(names.insert(t.name).second) << t.name;
    EXPECT_TRUE(t.defaults && t.check && t.train && t.owns_run) << t.name;
    EXPECT_EQ(t.defaults("").task, t.name) << "a row's defaults name their own task";
  }
  EXPECT_EQ(task_names(), "image, text, face or mlm");
  EXPECT_EQ(pretrain_task_names(), "image or text");
  EXPECT_EQ(find_pretrain_task("text").name, "mlm");
  EXPECT_EQ(find_pretrain_task("image").name, "image");
  EXPECT_EQ(test::error_of([] { find_task("audio"); }),
            "--task: 'audio' is not a task (expected image, text, face or mlm)");
  EXPECT_EQ(test::error_of([] { find_pretrain_task("face"); }),
            "--task: 'face' cannot be pretrained (expected image or text)");
}

TEST(TaskTable, ARunFolderIsFoundByItsFiles) {
  test::TempDir dir;
  auto run = [&](const std::string& name, const std::string& file, const std::string& json) {
    const std::string folder = dir / name;
    make_dirs(folder);
    write_file_atomic(folder + "/" + file, json);
    return task_of_run(folder).name;
  };
  EXPECT_EQ(run("image", "model.json", R"({"format": "graft-model", "backbone": "resnet18"})"), "image");
  EXPECT_EQ(run("text", "model.json", R"({"task": "text", "architecture": "bert"})"), "text");
  EXPECT_EQ(run("mlm", "model.json", R"({"task": "text-mlm", "architecture": "bert"})"), "mlm");
  EXPECT_EQ(run("face", "face_model.json", R"({"task": "face"})"), "face");
  make_dirs(dir / "empty");
  EXPECT_NE(test::error_of([&] { task_of_run(dir / "empty"); }).find("holds no model graft knows"),
            std::string::npos);
  // What the verbs may do with each: pretraining runs are sources, not classifiers.
  EXPECT_TRUE(find_task("image").evaluate && find_task("text").predict && find_task("face").evaluate);
  EXPECT_FALSE(find_task("mlm").evaluate || find_task("mlm").predict || find_task("mlm").test_run);
  EXPECT_FALSE(find_task("face").test_run);  // graft search does not search face runs
}

TEST(TaskTable, EachRowChecksItsOwnInput) {
  TrainOptions o = default_train_options("image");
  o.out = "out";
  EXPECT_EQ(test::error_of([&] { validate(o); }), "--data: a training folder or IDX file is required");
  o = default_train_options("text");
  o.out = "out";
  EXPECT_EQ(test::error_of([&] { validate(o); }),
            "--data: a labelled text file (CSV, TSV, JSONL) or folder is required");
  o = default_train_options("mlm");
  o.out = "out";
  EXPECT_EQ(test::error_of([&] { validate(o); }), "--corpus: give at least one text file");
  o = default_train_options("face");
  o.out = "out";
  EXPECT_EQ(test::error_of([&] { validate(o); }), "--data: a folder with one sub-folder per identity is required");
  // The text recipe is Hugging Face Trainer's; tfidf its own.
  const TrainOptions text = default_train_options("text");
  EXPECT_EQ(text.optimizer, "adamw");
  EXPECT_EQ(text.schedule, "linear");
  EXPECT_EQ(default_train_options("text", "tfidf").strategy, "linear");
}

}  // namespace
}  // namespace graft
