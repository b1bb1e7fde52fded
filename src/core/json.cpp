#include "graft/core/json.h"

#include <algorithm>

#include "graft/core/files.h"

namespace graft {

void check_json_depth(std::string_view text, const std::string& source, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      GRAFT_CHECK(++depth <= max_depth, source, ": JSON nested more than ", max_depth,
                  " levels deep (at byte ", i, "; expected at most ", max_depth, ")");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

namespace {

template <typename J>
J parse_bounded(const std::string& text, const std::string& source) {
  check_json_depth(text, source);
  try {
    return J::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse errors, number overflow (406)
    throw Error(str_cat(source, ": not valid JSON (", e.what(), ")"));
  }
}

// Compact JSON of `v` into `out`, stopping once `out` passes `max_chars` and
// below `depth` levels: bounded in time, memory and stack whatever the value
// (values built in code, or parsed elsewhere, may be deep or huge).
template <typename J>
void excerpt_into(const J& v, std::string& out, size_t max_chars, int depth) {
  if (out.size() > max_chars) return;
  if ((v.is_object() || v.is_array()) && depth <= 0) {
    out += v.is_object() ? "{...}" : "[...]";
    return;
  }
  if (v.is_object() || v.is_array()) {
    out += v.is_object() ? '{' : '[';
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= max_chars; ++it) {
      if (!first) out += ',';
      first = false;
      if (v.is_object()) out += J(it.key()).dump() + ":";
      excerpt_into(*it, out, max_chars, depth - 1);
    }
    out += v.is_object() ? '}' : ']';
    return;
  }
  std::string scalar = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += scalar.substr(0, max_chars + 1 - std::min(max_chars + 1, out.size()));
}

template <typename J>
std::string excerpt(const J& v, size_t max_chars) {
  std::string s;
  excerpt_into(v, s, max_chars, 16);
  if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
  return s;
}

}  // namespace

nlohmann::json parse_json(const std::string& text, const std::string& source) {
  return parse_bounded<nlohmann::json>(text, source);
}

nlohmann::ordered_json parse_ordered_json(const std::string& text, const std::string& source) {
  return parse_bounded<nlohmann::ordered_json>(text, source);
}

nlohmann::json read_json_file(const std::string& path) {
  return parse_json(read_file(path), "'" + path + "'");
}

nlohmann::ordered_json read_ordered_json_file(const std::string& path) {
  return parse_ordered_json(read_file(path), "'" + path + "'");
}

std::string json_excerpt(const nlohmann::json& v, size_t max_chars) { return excerpt(v, max_chars); }

std::string json_excerpt(const nlohmann::ordered_json& v, size_t max_chars) {
  return excerpt(v, max_chars);
}

std::string json_kind(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "binary data";
  }
}

}  // namespace graft
