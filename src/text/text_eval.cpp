#include "graft/text/text_eval.h"

#include <filesystem>
#include <iostream>
#include <sstream>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/progress.h"
#include "graft/models/head.h"
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
                                 const std::string& option, const std::string& write_dir,
                                 const RejectOptions& reject, Precision precision) {
  GRAFT_CHECK_USAGE(std::filesystem::exists(data), option, ": '", data,
                    "' does not exist (expected a CSV, TSV or JSONL file, or a folder of class files)");
  TextModel model = load_text_model(run);
  use_text_precision(model, precision, run, "evaluated");
  const RunScoring scoring = run_scoring(run, reject);
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
    if (model.words || model.use_lite) {  // textcnn word ids, [use-lite] SentencePiece ids
      int64_t dropped = 0;
      inputs.push_back(model.encode(x.text, "", &dropped));
      result.truncated += dropped > 0;
    } else {
      Encoding enc = model.info.pairs ? model.tokenizer->encode(x.text, x.text_b, max_length)
                                      : model.tokenizer->encode(x.text, std::nullopt, max_length);
      result.truncated += enc.num_truncated > 0;
      inputs.push_back({std::move(enc.input_ids), std::move(enc.token_type_ids)});
    }
    labels.push_back(x.label);
    ids.push_back(str_cat(data, ":", x.line));
  }
  result.texts = static_cast<int64_t>(inputs.size());
  if (result.truncated > 0)
    log_warn(str_cat(result.truncated, " of ", inputs.size(), " texts of '", data,
                     "' were truncated to the model's max_length ", model.info.max_length));
  const torch::Tensor logits = model.logits(inputs, batch_size);
  const torch::Tensor label_tensor = torch::tensor(labels, torch::kInt64);
  static_cast<ScoredSet&>(result) =
      scoring.score(logits, label_tensor, classes, ids, write_dir);
  return result;
}

namespace {

// The bytes of one input of predict_text_run ("-": standard input).
std::string read_text_input(const std::string& path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  check_input_file(path);
  return read_file(path);
}

}  // namespace

std::vector<InputPrediction> predict_text_run(const std::string& run,
                                              const std::vector<std::string>& inputs,
                                              int64_t top_k, int64_t batch_size,
                                              const PredictionCallback& each, const RejectOptions& reject,
                                              Precision precision) {
  TextModel model = load_text_model(run);
  use_text_precision(model, precision, run, "predicted");
  const RunScoring scoring = run_scoring(run, reject);
  std::vector<InputPrediction> results;
  std::vector<EncodedText> encoded;
  std::vector<size_t> result_of;  // the result of each encoded text
  auto fail = [&](const std::string& input, const std::string& error) {
    InputPrediction p;
    p.input = input;
    p.error = error;
    if (each) each(p);
    results.push_back(std::move(p));
  };
  for (const auto& path : inputs) {
    std::string data;
    try {
      data = read_text_input(path);
    } catch (const Error& e) {
      fail(path, e.what());
      continue;
    }
    std::istringstream lines(data);
    std::string line;
    for (int64_t n = 1; std::getline(lines, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const std::string name = str_cat(path == "-" ? "stdin" : path, ":", n);
      std::string a, b;
      if (!split_text_line(line, model.info.pairs, a, b)) {
        fail(name, str_cat(name, ": no tab (the model reads text pairs: TEXT<TAB>TEXT)"));
        continue;
      }
      if (a.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
      try {
        encoded.push_back(model.encode(a, b));
      } catch (const Error& e) {
        fail(name, str_cat(name, ": ", e.what()));
        continue;
      }
      InputPrediction p;
      p.input = name;
      p.text = line;
      result_of.push_back(results.size());
      results.push_back(std::move(p));
    }
  }
  const torch::Tensor logits = model.logits(encoded, batch_size);
  for (size_t i = 0; i < encoded.size(); ++i) {
    InputPrediction& p = results[result_of[i]];
    scoring.predict(p, logits[static_cast<int64_t>(i)], model.info.classes, top_k);
    if (each) each(p);
  }
  return results;
}

Embeddings embed_text_run(const std::string& run, const std::vector<std::string>& inputs, int64_t batch_size) {
  const TextModel model = load_text_model(run);
  GRAFT_CHECK_USAGE(model.info.architecture != "tfidf", "graft embed: '", run, "' is a ", model.info.architecture,
                    " run (expected a BERT or TextCNN run: a TF-IDF model has no features to embed)");
  Embeddings e;
  e.source = run;
  std::vector<EncodedText> encoded;
  for (const auto& path : inputs) {
    std::istringstream lines(read_text_input(path));
    std::string line;
    for (int64_t n = 1; std::getline(lines, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::string a, b;
      if (!split_text_line(line, model.info.pairs, a, b)) {
        log_warn(str_cat(path == "-" ? "stdin" : path, ":", n, ": no tab (the model reads text pairs); left out"));
        ++e.skipped;
        continue;
      }
      e.inputs.push_back(str_cat(path == "-" ? "stdin" : path, ":", n));
      encoded.push_back(model.encode(a, b));
    }
  }
  GRAFT_CHECK(!encoded.empty(), "graft embed: no text in the inputs (expected one text per line)");
  torch::InferenceMode guard;
  e.rows = model.features(encoded, batch_size).to(torch::kCPU, torch::kFloat32).contiguous();
  return e;
}

Enrolment enroll_text_class(const std::string& run, const std::string& name, const std::string& input,
                            int64_t batch_size) {
  check_class_name(name);
  const TextModel model = load_text_model(run);
  check_centroid_run(run, model.info.head);
  std::istringstream lines(read_text_input(input));
  std::vector<EncodedText> encoded;
  int64_t skipped = 0;
  std::string line;
  for (int64_t n = 1; std::getline(lines, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string a, b;
    if (!split_text_line(line, model.info.pairs, a, b)) {
      log_warn(str_cat(input, ":", n, ": no tab (the model reads text pairs: TEXT<TAB>TEXT); left out"));
      ++skipped;
      continue;
    }
    if (a.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
    encoded.push_back(model.encode(a, b));
  }
  GRAFT_CHECK(!encoded.empty(), "graft enroll: '", input, "' holds no text (expected one text of class '", name,
              "' per line)");
  Enrolment e = enroll_centroid_row(run, model.info.classes, name,
                                    class_centroid(model.features(encoded, batch_size)), "classifier");
  e.examples = static_cast<int64_t>(encoded.size());
  e.skipped = skipped;
  TextModelInfo info = model.info;
  info.classes = e.classes;
  write_text_model_json(run, info);
  return e;
}

}  // namespace graft
