#include "graft/cli/cli.h"

#include <charconv>
#include <cstdint>
#include <iostream>

#include <c10/util/Exception.h>

#include "graft/core/error.h"
#include "graft/core/runtime.h"
#include "graft/core/wait_policy.h"
#include "graft/data/image_header.h"
#include "graft/train/option_table.h"
#include "verbs.h"

namespace graft::cli {

void add_threads(CLI::App& sub, int& threads) {
  sub.add_option("--threads", threads, train_option("threads").help)
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
}

void add_precision(CLI::App& sub, std::string& precision) {
  // The training row's words up to its int8 (the linear probe's), then what
  // inference does with int8.
  const std::string train_help = train_option("precision").help;
  sub.add_option("--precision", precision,
                 train_help.substr(0, train_help.find(", or int8")) +
                     "; or int8 (ResNet family, AlexNet, VGG): post-training static int8 on the onednn engine, "
                     "calibrated once on --calibration training images and kept in the run folder; on a BERT "
                     "text run, dynamic int8 of its Linear layers")
      ->capture_default_str();
}

void add_int8_calibration(CLI::App& sub, int64_t& calibration, std::string& calibration_data) {
  sub.add_option("--calibration", calibration,
                 "--precision int8: images that calibrate the activation ranges (at least 16)")
      ->capture_default_str();
  sub.add_option("--calibration-data", calibration_data,
                 "--precision int8: a folder of images to calibrate on (default: the run's training data)");
}

void add_reject(CLI::App& sub, RejectOptions& r) {
  const char* group = "Open set (image and text runs)";
  sub.add_option("--reject-below", r.reject_below,
                 "Answer \"unknown\" when the top calibrated probability is below this (0 < P < 1)")
      ->group(group);
  sub.add_option("--reject-at-frr", r.reject_at_frr,
                 "Answer \"unknown\" below the threshold that would reject this share of the run's "
                 "validation inputs (0 < F < 1; e.g. 0.05)")
      ->group(group);
}

void add_tta(CLI::App& sub, std::string& tta) {
  sub.add_option("--tta", tta,
                 "Test-time augmentation of image runs, averaging the views' probabilities: none, flip "
                 "(centre crop + mirror), five-crop (4 corners + centre), ten-crop (five-crop + mirrors); "
                 "models without a resize margin (CIFAR 32/32) crop after a size/8 black border")
      ->capture_default_str();
}

void add_max_pixels(CLI::App& sub) {
  sub.add_option_function<int64_t>(
         "--max-pixels", [](const int64_t& pixels) { set_max_image_pixels(pixels); },
         train_option("max_pixels").help)
      ->default_str(std::to_string(kDefaultMaxImagePixels))
      ->check(CLI::PositiveNumber);
}

namespace {

// CLI11 reads an integer with strtoll/strtoull, which clamp an overflowing
// number to the type's limit and take "-1" as 2^64 - 1 for an unsigned one.
// Every integer option first passes this check on its text instead.
CLI::Validator strict_integer(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& text) -> std::string {
        const char* begin = text.data();
        const char* end = begin + text.size();
        std::from_chars_result r;
        if (is_unsigned) {
          uint64_t v = 0;
          r = text.empty() || text[0] == '-' ? std::from_chars_result{begin, std::errc::invalid_argument}
                                             : std::from_chars(begin, end, v);
        } else {
          int64_t v = 0;
          r = std::from_chars(begin, end, v);
        }
        if (r.ec == std::errc::result_out_of_range)
          return str_cat("'", text, "' is out of range (expected an integer from ",
                         is_unsigned ? std::string("0") : std::to_string(INT64_MIN), " to ",
                         is_unsigned ? std::to_string(UINT64_MAX) : std::to_string(INT64_MAX), ")");
        if (r.ec != std::errc() || r.ptr != end)
          return str_cat("'", text, "' is not ", is_unsigned ? "a non-negative" : "an",
                         " integer");
        return "";
      },
      "", "strict integer");
}

void add_integer_checks(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    const std::string type = opt->get_type_name().substr(0, opt->get_type_name().find(':'));
    if (type == "INT" || type == "UINT") opt->check(strict_integer(type == "UINT"));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) add_integer_checks(*sub);
}

int parse_and_run(const std::vector<std::string>& args) {
  // Process-wide settings that a verb's flags change start from their
  // defaults on every call (tests and embedders call run() many times).
  set_max_image_pixels(kDefaultMaxImagePixels);
  CLI::App app{"graft: transfer learning in C++ on LibTorch", "graft"};
  // The version, and the thread count that --threads 0 means here (the
  // cgroup's CPU quota caps it inside a container or a systemd scope), and
  // the OpenMP wait policy the launcher chose (graft/core/wait_policy.h).
  app.set_version_flag("--version", [] {
    return str_cat("graft ", GRAFT_VERSION, "\nthreads ", available_cores(), " by default\nOpenMP wait policy ",
                   wait_policy_report());
  });
  app.require_subcommand(1);
  Action action;
  add_train(app, action, args);
  add_pretrain(app, action, args);
  add_search(app, action, args);
  add_eval(app, action);
  add_predict(app, action);
  add_enroll(app, action);
  add_embed(app, action);
  add_models(app, action);
  add_weights(app, action);
  add_score(app, action);
  add_report(app, action);
  add_compare(app, action);
  add_face(app, action);
  add_export(app, action);  // [onnx export]
  add_serve(app, action);  // graft serve
  add_integer_checks(app);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  return action ? action() : 2;
}

}  // namespace

int run(const std::vector<std::string>& args) {
  try {
    return parse_and_run(args);
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

int main(int argc, char** argv) {
  tune_allocator();
  std::vector<std::string> args(argv + 1, argv + argc);
  return run(args);
}

}  // namespace graft::cli
