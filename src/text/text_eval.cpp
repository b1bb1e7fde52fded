#include "graft/text/text_eval.h"

#include <filesystem>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/text/text_model.h"

namespace graft {

TextReadOptions text_read_options(const TrainOptions& o) {
  TextReadOptions r;
  r.format = o.text_format;
  r.text_column = o.text_column;
  r.text_b_column = o.text_b_column;
  r.label_column = o.label_column;
  r.header = o.header;
  r.strict = o.strict;
  return r;
}

TextEvaluation evaluate_text_run(const std::string& run, const std::string& data,
                                 TextReadOptions read, int64_t batch_size,
                                 const std::string& option, const std::string& write_dir) {
  GRAFT_CHECK_USAGE(std::filesystem::exists(data), option, ": '", data,
                    "' does not exist (expected a CSV, TSV or JSONL file, or a folder of class files)");
  const TextModel model = load_text_model(run);
  const auto& classes = model.info.classes;
  read.classes = classes;
  const TextSet set = read_text_set(data, read);
  GRAFT_CHECK_USAGE(set.has_pairs == model.info.pairs, option, " '", data, "' has ",
                    set.has_pairs ? "text pairs" : "single texts", " but the model of '", run,
                    "' was trained on ", model.info.pairs ? "text pairs" : "single texts");
  if (set.skipped_empty > 0)
    log_warn(str_cat(option, " '", data, "': ", set.skipped_empty,
                     " empty or white-space texts skipped (--strict makes them an error)"));
  TextEvaluation result;
  result.skipped_empty = set.skipped_empty;
  std::vector<EncodedText> inputs;
  std::vector<int64_t> labels;
  std::vector<std::string> ids;
  const int max_length = static_cast<int>(model.info.max_length);
  for (const auto& x : set.examples) {
    Encoding enc = model.info.pairs ? model.tokenizer->encode(x.text, x.text_b, max_length)
                                    : model.tokenizer->encode(x.text, std::nullopt, max_length);
    result.truncated += enc.num_truncated > 0;
    inputs.push_back({std::move(enc.input_ids), std::move(enc.token_type_ids)});
    labels.push_back(x.label);
    ids.push_back(str_cat(data, ":", x.line));
  }
  result.texts = static_cast<int64_t>(inputs.size());
  if (result.truncated > 0)
    log_warn(str_cat(result.truncated, " of ", inputs.size(), " texts of '", data,
                     "' were truncated to the model's max_length ", model.info.max_length));
  const torch::Tensor logits = model.logits(inputs, batch_size);
  const torch::Tensor label_tensor = torch::tensor(labels, torch::kInt64);
  result.metrics = compute_metrics(logits, label_tensor, classes);
  if (!write_dir.empty()) {
    write_file_atomic(write_dir + "/test_metrics.json", to_json(result.metrics).dump(2) + "\n");
    write_file_atomic(write_dir + "/test_predictions.csv",
                      predictions_csv(logits, label_tensor, ids, classes));
  }
  return result;
}

}  // namespace graft
