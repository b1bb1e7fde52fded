// graft models: the backbone registry as a table (or JSON).

#include <iomanip>
#include <iostream>
#include <memory>

#include "graft/core/runtime.h"
#include "graft/core/error.h"
#include "graft/models/registry.h"
#include "graft/text/bert.h"
#include "verbs.h"

namespace graft::cli {

namespace {

struct ModelsOptions {
  bool json = false;
  bool macs = true;
  int threads = 0;
};

int run_models(const ModelsOptions& o) {
  set_threads(o.threads);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  if (!o.json)
    std::cout << std::left << std::setw(12) << "name" << std::setw(13) << "family" << std::right
              << std::setw(9) << "params" << std::setw(9) << "GMACs" << std::setw(9) << "features"
              << "  input\n";
  for (const auto& spec : backbone_registry()) {
    Backbone model = spec.make(spec.source_classes);
    int64_t params = count_parameters(*model);
    int64_t macs = o.macs ? count_macs(*model, spec.input) : 0;
    double gmacs = macs / 1e9;
    if (o.json) {
      rows.push_back({{"name", spec.name},
                      {"family", spec.family},
                      {"description", spec.description},
                      {"parameters", params},
                      {"macs", macs},
                      {"feature_dim", spec.feature_dim},
                      {"source_classes", spec.source_classes},
                      {"input", {{"size", spec.input.size}, {"resize", spec.input.resize},
                                 {"channels", spec.input.channels}, {"mean", spec.input.mean},
                                 {"std", spec.input.std}}}});
      continue;
    }
    std::ostringstream p;
    p << std::fixed << std::setprecision(2) << params / 1e6 << "M";
    std::ostringstream g;
    g << std::fixed << std::setprecision(3) << gmacs;
    std::cout << std::left << std::setw(12) << spec.name << std::setw(13) << spec.family << std::right
              << std::setw(9) << p.str() << std::setw(9) << (o.macs ? g.str() : "-") << std::setw(9)
              << spec.feature_dim << "  " << spec.input.channels << "x" << spec.input.size << "x"
              << spec.input.size << "\n";
  }
  // Text backbones (--task text): BERT sizes with bert-base-uncased's
  // 30,522-token vocabulary, and the TF-IDF floor.
  for (const auto& name : bert_size_names()) {
    BertConfig c = bert_size(name);
    BertModel model(c);
    const int64_t params = count_parameters(*model);
    if (o.json) {
      rows.push_back({{"name", name},
                      {"task", "text"},
                      {"family", "bert"},
                      {"description", str_cat("BERT, ", c.num_hidden_layers, " layers, hidden ",
                                              c.hidden_size, ", ", c.num_attention_heads, " heads")},
                      {"parameters", params},
                      {"feature_dim", c.hidden_size},
                      {"bert", to_json(c)}});
      continue;
    }
    std::ostringstream p;
    p << std::fixed << std::setprecision(2) << params / 1e6 << "M";
    std::cout << std::left << std::setw(12) << name << std::setw(13) << "bert" << std::right
              << std::setw(9) << p.str() << std::setw(9) << "-" << std::setw(9) << c.hidden_size
              << "  text, " << c.max_position_embeddings << " tokens\n";
  }
  if (o.json) {
    rows.push_back({{"name", "tfidf"}, {"task", "text"}, {"family", "bag-of-words"},
                    {"description", "TF-IDF of WordPiece unigrams and bigrams, linear head"}});
    std::cout << rows.dump(2) << "\n";
  } else {
    std::cout << std::left << std::setw(12) << "tfidf" << std::setw(13) << "bag-of-words " << std::right
              << std::setw(9) << "-" << std::setw(9) << "-" << std::setw(9) << "-" << "  text\n";
  }
  std::cout.flush();
  return 0;
}

}  // namespace

void add_models(CLI::App& app, Action& run) {
  auto o = std::make_shared<ModelsOptions>();
  CLI::App* sub = add_command(app, run, "models", "The backbone zoo: sizes, MACs, input specs", o, run_models);
  sub->add_flag("--json", o->json, "JSON instead of a table");
  sub->add_flag("!--no-macs", o->macs, "Skip the MAC count (a forward pass per model)");
  add_threads(*sub, o->threads);
}

}  // namespace graft::cli
