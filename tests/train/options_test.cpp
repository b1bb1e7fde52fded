// The option table (train/option_table.h) against TrainOptions: every field
// is a row or a known non-option, and every row is set by its flag and by
// config.json, round-trips through to_json and is checked by validate().

#include "graft/core/files.h"
#include "graft/train/option_table.h"
#include "graft/train/task.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/cli/train_options.h"
#include "graft/core/error.h"
#include "test_util.h"

namespace graft {
namespace {

// The fields of TrainOptions that are not options (no flag, not in
// config.json): should_stop, on_epoch and group. Anything else needs a row.
constexpr size_t kOptionsTestNonOptions = 3;

// Converts to any field type; only named in unevaluated contexts.
struct OptionsTestAny {
  template <typename T>
  operator T() const;
};

template <typename T, typename... A>
constexpr auto options_test_braces(int) -> decltype(void(T{std::declval<A>()...}), true) {
  return true;
}
template <typename T, typename... A>
constexpr bool options_test_braces(...) {
  return false;
}

// The number of fields of the aggregate T: the most initialisers T{...} takes.
template <typename T, typename... A>
constexpr size_t options_test_field_count() {
  if constexpr (options_test_braces<T, A..., OptionsTestAny>(0))
    return options_test_field_count<T, A..., OptionsTestAny>();
  else
    return sizeof...(A);
}

// A valid value of the row's type other than `def`, or nothing.
std::optional<OptionValue> options_test_other_value(const OptionRow& row, const OptionValue& def) {
  std::vector<OptionValue> candidates = std::visit(
      [&](const auto& d) -> std::vector<OptionValue> {
        using T = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<T, std::string>) {
          std::vector<OptionValue> c(row.one_of.begin(), row.one_of.end());
          for (const auto& t : task_table()) c.emplace_back(t.name);  // --task
          for (const char* s : {"opt-test-value", "mlp:64", "partial:2"}) c.emplace_back(std::string(s));
          return c;
        } else if constexpr (std::is_same_v<T, bool>) {
          return {OptionValue(std::in_place_type<bool>, !d)};
        } else if constexpr (std::is_same_v<T, double>) {
          return {0.25, 0.5, 0.75, 2.5};  // exact in binary and in text
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return {std::vector<std::string>{"opt-a", "opt-b"}};
        } else {
          return {OptionValue(std::in_place_type<T>, d + 1), OptionValue(std::in_place_type<T>, d - 1)};
        }
      },
      def);
  for (const auto& c : candidates)
    if (c != def && row.problem(c).empty()) return c;
  return std::nullopt;
}

// The command-line arguments that set the row to `v`.
std::vector<std::string> options_test_args(const OptionRow& row, const OptionValue& v) {
  std::vector<std::string> args = {row.flag()};
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) args.push_back(x);
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string joined;
          for (const auto& s : x) joined += (joined.empty() ? "" : ",") + s;
          args.push_back(joined);
        } else if constexpr (!std::is_same_v<T, bool>) args.push_back(str_cat(x));
      },
      v);
  return args;
}

nlohmann::json options_test_json(const OptionValue& v) {
  return std::visit([](const auto& x) { return nlohmann::json(x); }, v);
}

// The options after parsing `args` with the flags of graft train.
TrainOptions options_test_parse(std::vector<std::string> args) {
  TrainOptions o;
  CLI::App app{"options_test"};
  cli::bind_train_options(app, o);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  app.parse(args);
  return o;
}

TEST(OptionsTable, EveryFieldOfTrainOptionsIsARowOrAKnownNonOption) {
  const auto& rows = train_option_table();
  EXPECT_EQ(options_test_field_count<TrainOptions>(), rows.size() + kOptionsTestNonOptions)
      << "a TrainOptions field has no row in src/train/option_table.cpp (or a row no field)";
  std::set<std::string> keys, flags;
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_TRUE(keys.insert(rows[i].key).second) << rows[i].key;
    EXPECT_TRUE(flags.insert(rows[i].flag()).second) << rows[i].flag();
    EXPECT_EQ(rows[i].flag().rfind("--", 0), 0u) << rows[i].key;
    EXPECT_FALSE(rows[i].help.empty()) << rows[i].key;
    for (size_t j = 0; j < i; ++j) EXPECT_TRUE(rows[i].member != rows[j].member) << rows[i].key;
  }
}

TEST(OptionsTable, EveryRowIsSetByItsFlagAndByJsonAndRoundTrips) {
  const TrainOptions defaults;
  const nlohmann::json default_json = to_json(defaults);
  for (const OptionRow& row : train_option_table()) {
    SCOPED_TRACE(row.key);
    const OptionValue def = row.get(defaults);
    const std::optional<OptionValue> v = options_test_other_value(row, def);
    ASSERT_TRUE(v) << "no valid value other than the default to test with";

    TrainOptions from_cli;
    ASSERT_NO_THROW(from_cli = options_test_parse(options_test_args(row, *v)));
    EXPECT_TRUE(row.get(from_cli) == *v)
        << "the flag " << row.flag() << " does not set the field to " << option_value_text(*v);
    nlohmann::json j = to_json(from_cli);
    if (!row.in_config) {
      EXPECT_EQ(j, default_json);
      EXPECT_TRUE(test::contains(
          test::error_of([&] { train_options_from_json({{row.key, options_test_json(*v)}}, "t"); }),
          "unknown option '" + row.key + "'"));
      continue;
    }
    ASSERT_TRUE(j.contains(row.key));
    EXPECT_EQ(j[row.key], options_test_json(*v));
    nlohmann::json others = j;
    others.erase(row.key);
    nlohmann::json default_others = default_json;
    default_others.erase(row.key);
    EXPECT_EQ(others, default_others) << "the flag sets another field too";

    const TrainOptions from_json =
        train_options_from_json({{row.key, options_test_json(*v)}}, "t", &defaults);
    EXPECT_TRUE(row.get(from_json) == *v) << option_value_text(row.get(from_json));
    EXPECT_EQ(to_json(train_options_from_json(j, "t")), j);
  }
}

TEST(OptionsTable, ConfigJsonHoldsExactlyTheRowsInConfig) {
  std::set<std::string> in_config, in_json;
  for (const OptionRow& row : train_option_table())
    if (row.in_config) in_config.insert(row.key);
  const nlohmann::json j = to_json(TrainOptions{});
  for (const auto& [key, value] : j.items()) in_json.insert(key);
  EXPECT_EQ(in_json, in_config);
  // How a run is executed is in config.json too; how far one invocation
  // goes (and the callbacks) are not.
  for (const char* key : {"threads", "workers", "device", "quiet", "out", "overwrite", "resume"})
    EXPECT_TRUE(in_json.count(key)) << key;
  for (const char* key : {"stop_after_epoch", "should_stop", "on_epoch", "group"}) EXPECT_FALSE(in_json.count(key)) << key;
}

TEST(OptionsTable, EveryCheckedRowRejectsABadValueNamingItsFlag) {
  test::TempDir dir;
  write_file_atomic(dir / "corpus.txt", "a text\n");
  for (const OptionRow& row : train_option_table()) {
    SCOPED_TRACE(row.key);
    TrainOptions o = default_train_options(row.tasks.empty() ? "image" : row.tasks.front());
    o.data = "data";
    o.out = "out";
    o.corpus = {dir / "corpus.txt"};  // pretraining's input must exist
    o.vocab = "vocab.txt";
    ASSERT_NO_THROW(validate(o));
    std::vector<OptionValue> bad;
    const OptionValue def = row.get(o);
    if (std::holds_alternative<std::string>(def)) bad.emplace_back(std::string("not-an-option-value"));
    if (std::holds_alternative<double>(def)) bad = {std::nan(""), INFINITY, -2.0, 2.0, 1e9};
    if (row.range && !std::holds_alternative<double>(def)) {
      // Integer rows: just outside each finite end.
      const double outside = std::isfinite(row.range->lo) ? row.range->lo - 1 : row.range->hi + 1;
      bad.push_back(std::visit(
          [&](const auto& d) -> OptionValue {
            using T = std::decay_t<decltype(d)>;
            if constexpr (std::is_arithmetic_v<T>) return OptionValue(std::in_place_type<T>, static_cast<T>(outside));
            else return d;
          },
          def));
    }
    for (const OptionValue& v : bad) {
      const std::string expected = row.problem(v);
      if (expected.empty()) continue;  // valid for this row (an unchecked string)
      TrainOptions b = o;
      row.set(b, v);
      const std::string msg = test::error_of([&] { validate(b); });
      EXPECT_EQ(msg, expected);
      EXPECT_EQ(msg.rfind(row.flag() + ": ", 0), 0u) << msg;
    }
  }
}

// Today's messages, as tests elsewhere and users grep them.
TEST(OptionsTable, ValidateMessages) {
  TrainOptions o;
  o.data = "data";
  o.out = "out";
  auto error_with = [&](auto change) {
    TrainOptions b = o;
    change(b);
    return test::error_of([&] { validate(b); });
  };
  EXPECT_EQ(error_with([](TrainOptions& b) { b.epochs = 0; }),
            "--epochs: 0 (expected an integer from 1 to 1000000)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.momentum = 1; }),
            "--momentum: 1 (expected a number in [0, 1))");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.layer_decay = 0; }),
            "--layer-decay: 0 (expected a number in (0, 1])");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.lr = 0; }), "--lr: 0 (expected a positive number)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.clip_grad = -1; }), "--clip-grad: -1 (expected >= 0)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.schedule = "poly"; }),
            "--schedule: 'poly' is not valid (expected one of cosine, linear, step, constant, annealed)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.head = "mlp:0"; }),
            "--head: 'mlp:0' (expected linear, mlp:HIDDEN or centroid)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.strategy = "partial:x"; }),
            "--strategy: 'partial:x' (expected linear, partial:N or full)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.warmup_epochs = 11; }),
            "--warmup-epochs: 11 (expected 0 to --epochs, or -1: 6% of the run)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.val_split = 0, b.patience = 2; }),
            "--patience needs validation data (--val or --val-split > 0)");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.overwrite = b.resume = true; }),
            "--overwrite and --resume exclude each other");
  EXPECT_EQ(error_with([](TrainOptions& b) { b.data.clear(); }),
            "--data: a training folder or IDX file is required");
  // Text-task rows are checked for text runs only.
  EXPECT_EQ(error_with([](TrainOptions& b) { b.max_length = 1; }), "(no error)");
  TrainOptions text = default_train_options("text");
  text.data = "data";
  text.out = "out";
  text.max_length = 1;
  EXPECT_EQ(test::error_of([&] { validate(text); }), "--max-length: 1 (expected an integer from 3 to 4096)");
  text.max_length = 128;
  text.augment = "light";
  EXPECT_EQ(test::error_of([&] { validate(text); }),
            "--augment: 'light' (the text task has no augmentation; expected none)");
}

// graft train --task T --help lists the rows offered to T, with T's help
// texts, and no other task's (those still parse); graft pretrain --task text
// lists mlm's.
TEST(OptionsTable, HelpListsTheRowsOfTheTaskNamed) {
  std::map<std::string, std::string> help;
  for (const auto& t : task_table()) {
    const std::vector<std::string> args =
        t.pretrain_name.empty() || t.pretrain_name == t.name
            ? std::vector<std::string>{"train", "--task", t.name, "--help"}
            : std::vector<std::string>{"pretrain", "--task", t.pretrain_name, "--help"};
    const test::CliResult r = test::graft_cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    help[t.name] = r.out;
  }
  for (const OptionRow& row : train_option_table())
    for (const auto& [task, out] : help) {
      if (row.key == "task") continue;  // pretrain's --task says what can be pretrained
      EXPECT_EQ(test::contains(out, row.help_of(task)), row.offered_to(task))
          << row.flag() << " in " << task << "'s help";
    }
  // graft eval's --precision shares the declaration's fp32/bf16 words (its
  // int8 is inference's, not the linear probe's).
  const test::CliResult eval = test::graft_cli({"eval", "--help"});
  const std::string train_help = train_option("precision").help;
  ASSERT_NE(train_help.find(", or int8"), std::string::npos) << train_help;
  EXPECT_TRUE(test::contains(eval.out, train_help.substr(0, train_help.find(", or int8")))) << eval.out;
  EXPECT_FALSE(test::contains(eval.out, "linear probe's cached features")) << eval.out;
}

// A flag on the command line that the task does not take is refused before
// anything is read, naming the flag, the task and the tasks that take it.
TEST(OptionsTable, AFlagTheTaskDoesNotTakeIsRefused) {
  auto takers = [](const std::string& key) {
    std::string out;
    for (const auto& t : task_table())
      if (train_option(key).offered_to(t.name)) out += (out.empty() ? "" : ", ") + t.name;
    return out;
  };
  const test::CliResult face =
      test::graft_cli({"train", "--task", "face", "--data", "none", "--out", "none", "--optimizer", "adamw"});
  EXPECT_EQ(face.code, 2);
  EXPECT_TRUE(test::contains(face.err, "--optimizer: not an option of --task face (tasks that take it: " +
                                           takers("optimizer") + ")"))
      << face.err;
  EXPECT_EQ(takers("optimizer"), "image, text, mlm");
  const test::CliResult mlm = test::graft_cli({"pretrain", "--task", "text", "--corpus", "none", "--out",
                                               "none", "--head", "linear"});
  EXPECT_EQ(mlm.code, 2);
  EXPECT_TRUE(test::contains(mlm.err, "--head: not an option of --task text (tasks that take it: " +
                                          takers("head") + ")"))
      << mlm.err;
  EXPECT_EQ(takers("head"), "image, text, face");
  // --resume: the run's config.json names the task; flags are not checked against the default one.
  const test::CliResult resumed =
      test::graft_cli({"train", "--resume", "--out", "no-such-run", "--finetune-epochs", "3"});
  EXPECT_EQ(resumed.code, 2);
  EXPECT_TRUE(test::contains(resumed.err, "--resume: 'no-such-run' has no config.json")) << resumed.err;
}

// --task text's defaults are what its help shows.
TEST(OptionsTable, TextHelpShowsTheTextDefaults) {
  const test::CliResult r = test::graft_cli({"train", "--task", "text", "--help"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(test::contains(r.out, "--optimizer TEXT=adamw")) << r.out;
  EXPECT_TRUE(test::contains(r.out, "(default cosine; text: linear)")) << r.out;
}

}  // namespace
}  // namespace graft
