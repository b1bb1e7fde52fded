// Search spaces (the JSON of --space), the grid and random points drawn
// from them, and the rungs of successive halving.

#include "graft/select/search.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "graft/core/error.h"
#include "graft/core/json.h"
#include "graft/core/runtime.h"
#include "graft/train/option_table.h"
#include "graft/train/options.h"

using Json = nlohmann::json;

namespace graft {
namespace {

// Options a search may not vary: where data and results live, and how the
// run is executed.
const std::set<std::string> kFixed = {"task", "data", "val", "test", "out", "overwrite",
                                      "resume", "threads", "workers", "device", "quiet",
                                      "cache_dir", "cache_mb", "strict"};

std::string normalise(std::string name) {
  while (!name.empty() && name[0] == '-') name.erase(0, 1);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

void check_option(const std::string& name, const std::string& where) {
  static const Json known = to_json(TrainOptions{});
  GRAFT_CHECK_USAGE(known.contains(name), where, ": '", name,
                    "' is not a graft train option (see graft train --help)");
  GRAFT_CHECK_USAGE(!kFixed.count(name), where, ": '", name,
                    "' cannot be searched (it says where data and results are or how to run)");
}

std::pair<double, double> bounds(const Json& v, const std::string& where) {
  GRAFT_CHECK_USAGE(v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number(), where,
                    ": expected [low, high] (two numbers), got ", json_excerpt(v));
  double lo = v[0].get<double>(), hi = v[1].get<double>();
  GRAFT_CHECK_USAGE(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, where,
                    ": empty range [", lo, ", ", hi, "] (expected low <= high)");
  return {lo, hi};
}

}  // namespace

SearchSpace parse_search_space(const Json& j, const std::string& source) {
  GRAFT_CHECK_USAGE(j.is_object(), source,
                    ": a search space is a JSON object of option: values (got ", j.type_name(), ")");
  GRAFT_CHECK_USAGE(!j.empty(), source, ": the search space is empty");
  SearchSpace space;
  for (auto it = j.begin(); it != j.end(); ++it) {
    SearchDimension d;
    const std::string where = str_cat(source, ": '", it.key(), "'");
    d.name = normalise(it.key());
    const Json& v = it.value();
    if (v.is_array()) {
      GRAFT_CHECK_USAGE(!v.empty(), where, ": empty list of values");
      d.kind = SearchDimension::Kind::kList;
      bool objects = v[0].is_object();
      for (const auto& e : v) {
        GRAFT_CHECK_USAGE(e.is_object() == objects, where,
                          ": mixes option groups (objects) and plain values");
        if (objects) {
          GRAFT_CHECK_USAGE(!e.empty(), where, ": an empty option group");
          for (auto g = e.begin(); g != e.end(); ++g) check_option(normalise(g.key()), where);
        }
        d.values.push_back(e);
      }
      if (!objects) check_option(d.name, where);
    } else if (v.is_object()) {
      check_option(d.name, where);
      int kinds = v.contains("uniform") + v.contains("log_uniform") + v.contains("int");
      GRAFT_CHECK_USAGE(kinds == 1, where,
                        ": expected one of {\"uniform\": [lo, hi]}, {\"log_uniform\": [lo, hi]}, "
                        "{\"int\": [lo, hi]}, got ", json_excerpt(v));
      for (auto k = v.begin(); k != v.end(); ++k)
        GRAFT_CHECK_USAGE(k.key() == "uniform" || k.key() == "log_uniform" || k.key() == "int" ||
                              k.key() == "num" || k.key() == "step",
                          where, ": unknown key '", k.key(), "' (expected num or step)");
      if (v.contains("uniform")) {
        d.kind = SearchDimension::Kind::kUniform;
        std::tie(d.low, d.high) = bounds(v["uniform"], where);
      } else if (v.contains("log_uniform")) {
        d.kind = SearchDimension::Kind::kLogUniform;
        std::tie(d.low, d.high) = bounds(v["log_uniform"], where);
        GRAFT_CHECK_USAGE(d.low > 0, where, ": a log range needs positive bounds, got [", d.low,
                          ", ", d.high, "]");
      } else {
        d.kind = SearchDimension::Kind::kInt;
        std::tie(d.low, d.high) = bounds(v["int"], where);
        GRAFT_CHECK_USAGE(d.low == std::floor(d.low) && d.high == std::floor(d.high), where,
                          ": an int range needs integer bounds");
        GRAFT_CHECK_USAGE(std::abs(d.low) <= 9007199254740992.0 && std::abs(d.high) <= 9007199254740992.0,
                          where, ": int range bounds beyond 2^53");
        GRAFT_CHECK_USAGE(!v.contains("step") || v["step"].is_number_integer(), where,
                          ": step ", json_excerpt(v.value("step", Json())), " (expected an integer)");
        d.step = v.value("step", int64_t{1});
        GRAFT_CHECK_USAGE(d.step >= 1, where, ": step ", d.step, " (expected at least 1)");
      }
      if (v.contains("num")) {
        GRAFT_CHECK_USAGE(v["num"].is_number_integer() && v["num"].get<int64_t>() >= 1 &&
                              v["num"].get<int64_t>() <= 100000,
                          where, ": num ", json_excerpt(v["num"]), " (expected an integer from 1 to 100000)");
        d.num = v["num"].get<int64_t>();
      }
    } else {
      throw UsageError(str_cat(where, ": expected a list of values or a range object, got ",
                               json_excerpt(v)));
    }
    space.dims.push_back(std::move(d));
  }
  return space;
}

namespace {

// The grid values of one dimension.
std::vector<Json> dimension_grid(const SearchDimension& d, const std::string& source) {
  std::vector<Json> out;
  switch (d.kind) {
    case SearchDimension::Kind::kList:
      return d.values;
    case SearchDimension::Kind::kInt:
      GRAFT_CHECK_USAGE((d.high - d.low) / static_cast<double>(d.step) < 100000, source, ": '",
                        d.name, "' has more than 100000 grid values");
      for (double v = d.low; v <= d.high; v += static_cast<double>(d.step))
        out.push_back(static_cast<int64_t>(v));
      return out;
    default:
      break;
  }
  GRAFT_CHECK_USAGE(d.num >= 1, source, ": '", d.name,
                    "' is a continuous range: grid search needs \"num\" (how many points)");
  for (int64_t i = 0; i < d.num; ++i) {
    double t = d.num == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(d.num - 1);
    double v = d.kind == SearchDimension::Kind::kUniform
                   ? d.low + t * (d.high - d.low)
                   : std::exp(std::log(d.low) + t * (std::log(d.high) - std::log(d.low)));
    // 12 significant digits: 0.3, not 0.30000000000000004.
    out.push_back(std::stod(str_cat(std::setprecision(12), v)));
  }
  return out;
}

void put(Json& point, const SearchDimension& d, const Json& value) {
  if (value.is_object()) {
    for (auto g = value.begin(); g != value.end(); ++g) point[normalise(g.key())] = g.value();
  } else {
    point[d.name] = value;
  }
}

}  // namespace

std::vector<Json> grid_points(const SearchSpace& space, const std::string& source) {
  std::vector<std::vector<Json>> axes;
  size_t total = 1;
  for (const auto& d : space.dims) {
    axes.push_back(dimension_grid(d, source));
    total *= axes.back().size();
    GRAFT_CHECK_USAGE(total <= 100000, source, ": the grid has more than 100000 points");
  }
  std::vector<Json> out;
  std::vector<size_t> at(axes.size(), 0);
  for (size_t n = 0; n < total; ++n) {
    Json p = Json::object();
    for (size_t k = 0; k < axes.size(); ++k) put(p, space.dims[k], axes[k][at[k]]);
    out.push_back(p);
    for (size_t k = axes.size(); k-- > 0;) {  // the last dimension varies fastest
      if (++at[k] < axes[k].size()) break;
      at[k] = 0;
    }
  }
  return out;
}

std::vector<Json> random_points(const SearchSpace& space, int64_t n, uint64_t seed) {
  std::vector<Json> out;
  for (int64_t i = 0; i < n; ++i) {
    std::mt19937_64 rng(mix_seed(seed, 601, static_cast<uint64_t>(i)));
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    Json p = Json::object();
    for (const auto& d : space.dims) {
      switch (d.kind) {
        case SearchDimension::Kind::kList:
          put(p, d, d.values[rng() % d.values.size()]);
          break;
        case SearchDimension::Kind::kUniform:
          put(p, d, d.low + u01(rng) * (d.high - d.low));
          break;
        case SearchDimension::Kind::kLogUniform:
          put(p, d, std::exp(std::log(d.low) + u01(rng) * (std::log(d.high) - std::log(d.low))));
          break;
        case SearchDimension::Kind::kInt: {
          uint64_t steps = static_cast<uint64_t>((d.high - d.low) / static_cast<double>(d.step)) + 1;
          put(p, d, static_cast<int64_t>(d.low) + static_cast<int64_t>(rng() % steps) * d.step);
          break;
        }
      }
    }
    out.push_back(p);
  }
  return out;
}

std::vector<int64_t> halving_rungs(int64_t min_epochs, double eta, int64_t max_epochs) {
  std::vector<int64_t> r;
  for (double e = static_cast<double>(min_epochs); e < static_cast<double>(max_epochs); e *= eta)
    r.push_back(static_cast<int64_t>(std::llround(e)));
  r.erase(std::unique(r.begin(), r.end()), r.end());
  r.push_back(max_epochs);
  return r;
}

int64_t halving_keep(int64_t n, double eta) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::floor(static_cast<double>(n) / eta)));
}

}  // namespace graft
