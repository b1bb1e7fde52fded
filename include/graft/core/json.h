#pragma once
/// JSON reading for every JSON file or header graft reads: the nesting is
/// bounded before parsing, and parse and type errors name the file and key.
/// Values quoted in messages are cut short (json_excerpt), so that neither a
/// hostile file's depth nor its size reaches an error message whole.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"

namespace graft {

/// The deepest nesting of arrays and objects accepted. graft's own files
/// nest fewer than 10 levels; nlohmann's dump() recurses once per level, and
/// about 60,000 levels overflow the stack.
constexpr int kMaxJsonDepth = 64;

/// Parses `text`, read from `source` (a path, or a phrase such as "the header
/// of 'x.safetensors'"). Throws graft::Error naming `source` when the text is
/// not JSON or nests deeper than kMaxJsonDepth.
nlohmann::json parse_json(const std::string& text, const std::string& source);
/// As parse_json, keeping the order of object keys.
nlohmann::ordered_json parse_ordered_json(const std::string& text, const std::string& source);

/// Reads and parses the JSON file at `path` (errors name the path).
nlohmann::json read_json_file(const std::string& path);
nlohmann::ordered_json read_ordered_json_file(const std::string& path);

/// Throws graft::Error naming `source` when `text` nests deeper than
/// `max_depth` (strings are skipped; the text need not be valid JSON).
void check_json_depth(std::string_view text, const std::string& source,
                      int max_depth = kMaxJsonDepth);

/// The value as compact JSON text for a message, cut to about `max_chars`
/// characters ("..." marks the cut).
std::string json_excerpt(const nlohmann::json& v, size_t max_chars = 200);
std::string json_excerpt(const nlohmann::ordered_json& v, size_t max_chars = 200);

/// The JSON type of a value in words ("a string", "an array", ...).
std::string json_kind(const nlohmann::json& v);

/// j[key] converted to T. Throws graft::Error naming `source` and `key` when
/// `j` is not an object, the key is missing, or the value is not a T (with
/// an excerpt of the value seen).
template <typename T, typename J>
T json_get(const J& j, const std::string& key, const std::string& source) {
  GRAFT_CHECK(j.is_object(), source, ": expected a JSON object holding \"", key, "\", got ",
              json_excerpt(j));
  auto it = j.find(key);
  GRAFT_CHECK(it != j.end(), source, ": \"", key, "\" is missing");
  try {
    return it->template get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(str_cat(source, ": \"", key, "\" has the wrong type: ", json_excerpt(*it), " (",
                        e.what(), ")"));
  }
}

/// As json_get, with `fallback` when the key is absent (a present key of the
/// wrong type is still an error).
template <typename T, typename J>
T json_get_or(const J& j, const std::string& key, const T& fallback, const std::string& source) {
  GRAFT_CHECK(j.is_object(), source, ": expected a JSON object, got ", json_excerpt(j));
  if (!j.contains(key)) return fallback;
  return json_get<T>(j, key, source);
}

}  // namespace graft
