#include "graft/text/text_data.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/core/json.h"
#include "graft/core/runtime.h"
#include "graft/data/order.h"
#include "text_data_parts.h"
#include "unicode.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

using namespace text_data_detail;

constexpr size_t kMaxListed = 20;  // cells or classes shown in one message

// One record of a CSV/TSV file.
struct Row {
  int64_t line = 0;
  std::vector<std::string> fields;
};

constexpr size_t kMaxShown = 60;    // bytes of one value shown in a message

// A value for a message: at most kMaxShown bytes, cut at a character boundary.
std::string clip(const std::string& s) {
  if (s.size() <= kMaxShown) return s;
  size_t cut = kMaxShown;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size() && i < kMaxListed; ++i)
    out += (i ? ", '" : "'") + clip(items[i]) + "'";
  if (items.size() > kMaxListed) out += str_cat(", ... (", items.size(), " in all)");
  return out + "]";
}

std::string lower_ascii(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim_label(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool is_index(const std::string& spec) {
  return !spec.empty() && spec.size() <= 9 &&
         std::all_of(spec.begin(), spec.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Unicode White_Space (what Python's str.isspace and strip() remove).
bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000 || (cp >= 0x1C && cp <= 0x1F);
}

}  // namespace

namespace text_data_detail {

// True when s (valid UTF-8) holds nothing but white space.
bool is_blank(std::string_view s) {
  size_t i = 0;
  char32_t cp;
  while (i < s.size()) {
    if (!unicode::next_utf8(s, i, cp)) return false;
    if (!is_white_space(cp)) return false;
  }
  return true;
}

// Skips a UTF-8 byte order mark and checks that the rest is UTF-8.
std::string_view checked_utf8(const std::string& bytes, const std::string& source) {
  std::string_view s(bytes);
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  size_t bad = unicode::find_invalid_utf8(s);
  if (bad != s.size()) {
    size_t offset = bad + (s.data() - bytes.data());
    int64_t line = 1 + std::count(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(bytes[offset]));
    throw Error(str_cat(source, ": invalid UTF-8 at byte offset ", offset, " (line ", line,
                        ", byte ", hex, "); expected a UTF-8 text file (convert it, e.g. "
                        "iconv -f latin1 -t utf-8)"));
  }
  return s;
}

}  // namespace text_data_detail

namespace {

// The (valid UTF-8) character that starts at s[i].
std::string char_at(std::string_view s, size_t i) {
  size_t end = i;
  char32_t cp;
  if (!unicode::next_utf8(s, end, cp)) end = i + 1;
  return std::string(s.substr(i, end - i));
}

// Splits CSV (quoting) or TSV (quoting optional) text into records.
std::vector<Row> split_table(std::string_view s, char sep, bool quoting, const std::string& source,
                             int64_t& blank_lines) {
  std::vector<Row> rows;
  const size_t n = s.size();
  size_t i = 0, line_start = 0;
  int64_t line = 1;
  auto at_line_end = [&](size_t k) {
    return k >= n || s[k] == '\n' || (s[k] == '\r' && (k + 1 == n || s[k + 1] == '\n'));
  };
  while (i < n) {
    if (s[i] == '\n' || (s[i] == '\r' && at_line_end(i))) {  // an empty line
      ++blank_lines;
      i += s[i] == '\r' ? (i + 1 < n ? 2 : 1) : 1;
      ++line;
      line_start = i;
      continue;
    }
    Row row;
    row.line = line;
    for (;;) {
      std::string field;
      if (quoting && i < n && s[i] == '"') {
        const int64_t open_line = line;
        const size_t open_col = i - line_start + 1;
        ++i;
        for (;;) {
          GRAFT_CHECK(i < n, source, " line ", open_line, ": the quoted field that opens at column ",
                      open_col, " is never closed (expected a closing '\"'; a '\"' inside a "
                      "quoted field is written '\"\"')");
          char c = s[i];
          if (c == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') {
            ++line;
            line_start = i + 1;
          }
          field += c;
          ++i;
        }
        GRAFT_CHECK(i >= n || s[i] == sep || at_line_end(i), source, " line ", line, " column ",
                    i - line_start + 1, ": '", char_at(s, i),
                    "' after a closing quote; expected the separator or the end of the line "
                    "(a '\"' inside a quoted field is written '\"\"')");
      } else {
        size_t start = i;
        while (i < n && s[i] != sep && s[i] != '\n') ++i;
        size_t end = i;
        if (end > start && s[end - 1] == '\r' && (i == n || s[i] == '\n')) --end;
        field.assign(s.substr(start, end - start));
      }
      row.fields.push_back(std::move(field));
      if (i >= n) break;
      if (s[i] == sep) {
        ++i;
        if (i == n) row.fields.emplace_back();  // "a,b," at the very end
        if (i == n) break;
        continue;
      }
      if (s[i] == '\r') ++i;
      if (i < n && s[i] == '\n') {
        ++i;
        ++line;
        line_start = i;
      }
      break;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// A column as resolved: its index in the row, and how to name it.
struct Column {
  size_t index = 0;
  std::string name;  // the header cell, or "#N"
};

std::string describe_row(const std::vector<std::string>& cells) { return quoted_list(cells); }

const std::vector<std::string> kTextNames = {"text",    "sentence", "sentence1", "text_a",  "premise",
                                             "question1", "review", "content",   "document", "sms"};
const std::vector<std::pair<std::string, std::string>> kPairNames = {
    {"sentence1", "sentence2"}, {"text_a", "text_b"}, {"premise", "hypothesis"},
    {"question1", "question2"}};
const std::vector<std::string> kLabelNames = {"label",    "labels", "class",
                                              "category", "target", "sentiment"};

// Index of `name` among `cells`: exact, else the one case-insensitive match.
std::optional<size_t> find_name(const std::vector<std::string>& cells, const std::string& name) {
  for (size_t i = 0; i < cells.size(); ++i)
    if (trim_label(cells[i]) == name) return i;
  std::optional<size_t> found;
  const std::string want = lower_ascii(name);
  for (size_t i = 0; i < cells.size(); ++i) {
    if (lower_ascii(trim_label(cells[i])) == want) {
      if (found) return std::nullopt;
      found = i;
    }
  }
  return found;
}

std::optional<size_t> find_default(const std::vector<std::string>& cells,
                                   const std::vector<std::string>& names) {
  for (const auto& want : names)
    for (size_t i = 0; i < cells.size(); ++i)
      if (lower_ascii(trim_label(cells[i])) == want) return i;
  return std::nullopt;
}

// Resolves a column spec against line 1 (`header` when it is one).
Column resolve(const std::string& spec, const char* what, const std::vector<std::string>& first,
               bool has_header, const std::string& source) {
  Column c;
  if (is_index(spec)) {
    c.index = std::stoul(spec);
    GRAFT_CHECK(c.index < first.size(), source, ": ", what, " column ", spec,
                " does not exist: line 1 has ", first.size(), " field", first.size() == 1 ? "" : "s",
                " (expected an index from 0 to ", first.size() - 1, ")");
    c.name = has_header ? trim_label(first[c.index]) : "#" + spec;
    return c;
  }
  std::optional<size_t> at = find_name(first, spec);
  GRAFT_CHECK(at, source, ": no ", what, " column '", clip(spec), "'; the columns on line 1 are ",
              describe_row(first), " (give a column by name or by 0-based index)");
  c.index = *at;
  c.name = trim_label(first[c.index]);
  return c;
}

}  // namespace

namespace text_data_detail {

// Where the examples come from: a label string and one or two texts per record.
// Classes, label indices and empty-text skipping, the same for every format.
TextSet finish(TextSet set, std::vector<Labelled> records, const TextReadOptions& o) {
  const std::string& src = set.source;
  std::map<std::string, int> index;
  if (o.unlabeled) {  // texts without labels: every label -1, no classes
    set.label_column.clear();
    for (Labelled& r : records) r.label.clear();
  } else if (!o.classes.empty()) {
    set.classes = o.classes;
    for (size_t i = 0; i < o.classes.size(); ++i) {
      GRAFT_CHECK(index.emplace(o.classes[i], static_cast<int>(i)).second, src,
                  ": class '", clip(o.classes[i]), "' is given twice in the fixed classes");
    }
  }
  for (const Labelled& r : records) {
    if (o.unlabeled) break;
    GRAFT_CHECK(!r.label.empty(), src, " line ", r.line, ": empty label (expected a class name",
                set.label_column.empty() ? "" : " in column '" + set.label_column + "'", ")");
    if (!o.classes.empty()) {
      GRAFT_CHECK(index.count(r.label), src, ": label '", clip(r.label), "' on line ", r.line,
                  " is not among the training classes ", quoted_list(o.classes));
    } else {
      index.emplace(r.label, 0);
    }
  }
  if (o.classes.empty() && !o.unlabeled) {
    int k = 0;
    for (auto& [name, id] : index) {
      id = k++;
      set.classes.push_back(name);
    }
  }
  set.examples.reserve(records.size());
  for (Labelled& r : records) {
    bool empty = r.text_null || is_blank(r.text) || (set.has_pairs && is_blank(r.text_b));
    if (empty) {
      GRAFT_CHECK(!o.strict, src, " line ", r.line, ": empty text", set.has_pairs ? " (pair)" : "",
                  "; expected some text (empty texts are skipped unless strict)");
      ++set.skipped_empty;
      continue;
    }
    TextExample e;
    e.text = std::move(r.text);
    e.text_b = std::move(r.text_b);
    e.label = o.unlabeled ? -1 : index.at(r.label);
    e.line = r.line;
    set.examples.push_back(std::move(e));
  }
  GRAFT_CHECK(!set.examples.empty(), src, ": no examples (", records.size(), " record",
              records.size() == 1 ? "" : "s", ", ", set.skipped_empty,
              " skipped as empty); expected at least one ", o.unlabeled ? "text" : "labelled text");
  return set;
}

}  // namespace text_data_detail

namespace {

TextSet parse_table(std::string_view s, char sep, TextSet set, const TextReadOptions& o) {
  const std::string& src = set.source;
  const bool quoting = sep == ',' || o.tsv_quoting;
  std::vector<Row> rows = split_table(s, sep, quoting, src, set.skipped_blank_lines);
  GRAFT_CHECK(!rows.empty(), src, ": no records; expected a ", set.format, " file with a text and a "
              "label column");
  const std::vector<std::string>& first = rows[0].fields;
  const size_t width = first.size();
  for (const Row& r : rows)
    GRAFT_CHECK(r.fields.size() == width, src, " line ", r.line, ": ", r.fields.size(), " field",
                r.fields.size() == 1 ? "" : "s", ", expected ", width, " as on line 1",
                sep == '\t' ? (quoting ? "" : " (a tab inside a text?)")
                            : " (a ',' inside an unquoted text? quote the field)");

  // Header: see the file comment of text_data.h.
  const bool all_indices = is_index(o.text_column) && (o.unlabeled || is_index(o.label_column)) &&
                           (o.text_b_column.empty() || is_index(o.text_b_column));
  bool header;
  if (o.header == "yes") {
    header = true;
  } else if (o.header == "no") {
    header = false;
  } else if (o.unlabeled) {
    GRAFT_CHECK_USAGE(o.header == "auto", "header must be auto, yes or no, not '", o.header, "'");
    header = !all_indices;  // no label column to tell a header line by
  } else {
    GRAFT_CHECK_USAGE(o.header == "auto", "header must be auto, yes or no, not '", o.header, "'");
    if (!all_indices) {
      header = true;
    } else {
      size_t li = std::stoul(o.label_column);
      GRAFT_CHECK(li < width, src, ": label column ", o.label_column, " does not exist: line 1 has ",
                  width, " field", width == 1 ? "" : "s", " (expected an index from 0 to ",
                  width - 1, ")");
      const std::string first_label = trim_label(first[li]);
      if (!o.classes.empty()) {
        header = std::find(o.classes.begin(), o.classes.end(), first_label) == o.classes.end();
      } else {
        header = rows.size() > 1;
        for (size_t r = 1; r < rows.size() && header; ++r)
          if (trim_label(rows[r].fields[li]) == first_label) header = false;
      }
    }
  }
  GRAFT_CHECK(!header || rows.size() > 1, src, ": only a header line ", describe_row(first),
              "; expected labelled texts after it");
  GRAFT_CHECK(header || !o.text_column.empty(), src, ": no text column given and the file has no "
              "header (line 1 is ", describe_row(first), "); give the text column by 0-based index");
  GRAFT_CHECK(header || o.unlabeled || !o.label_column.empty(), src, ": no label column given and the file has no "
              "header (line 1 is ", describe_row(first), "); give the label column by 0-based index");
  GRAFT_CHECK(header || o.text_b_column.empty() || is_index(o.text_b_column), src,
              ": second-text column '", o.text_b_column, "' is a name but the file has no header");
  GRAFT_CHECK(header || is_index(o.text_column), src, ": text column '", o.text_column,
              "' is a name but the file has no header");
  GRAFT_CHECK(header || o.unlabeled || is_index(o.label_column), src, ": label column '", o.label_column,
              "' is a name but the file has no header");
  if (header) set.header = first;

  // The column of a role the user did not name: the first with a usual name.
  auto usual = [&](const std::vector<std::string>& names, const char* role, const char* examples) {
    std::optional<size_t> at = find_default(first, names);
    GRAFT_CHECK(at, src, ": no ", role, " column given and none of the usual names (", examples,
                ") on line 1, which is ", describe_row(first), "; give the ", role,
                " column by name or 0-based index");
    return Column{*at, trim_label(first[*at])};
  };
  Column text, label;
  std::optional<Column> text_b;
  if (o.text_column.empty()) {
    text = usual(kTextNames, "text", "text, sentence, sentence1, review, ...");
    if (o.text_b_column.empty()) {
      for (const auto& [a, b] : kPairNames) {
        if (lower_ascii(text.name) != a) continue;
        if (std::optional<size_t> bt = find_default(first, {b})) text_b = Column{*bt, trim_label(first[*bt])};
      }
    }
  } else {
    text = resolve(o.text_column, "text", first, header, src);
  }
  if (!o.text_b_column.empty()) text_b = resolve(o.text_b_column, "second-text", first, header, src);
  if (o.unlabeled) {
    label.index = std::numeric_limits<size_t>::max();  // none
  } else if (o.label_column.empty()) {
    label = usual(kLabelNames, "label", "label, labels, class, category, ...");
  } else {
    label = resolve(o.label_column, "label", first, header, src);
  }
  GRAFT_CHECK(text.index != label.index, src, ": the text and the label are the same column ('",
              text.name, "')");
  if (text_b) {
    GRAFT_CHECK(text_b->index != label.index && text_b->index != text.index, src,
                ": the second text column '", text_b->name, "' is also the ",
                text_b->index == label.index ? "label" : "text", " column");
  }
  set.text_column = text.name;
  set.label_column = label.name;
  set.has_pairs = text_b.has_value();
  if (text_b) set.text_b_column = text_b->name;

  std::vector<Labelled> records;
  records.reserve(rows.size());
  for (size_t r = header ? 1 : 0; r < rows.size(); ++r) {
    Row& row = rows[r];
    Labelled l;
    l.line = row.line;
    if (!o.unlabeled) l.label = trim_label(row.fields[label.index]);
    l.text = std::move(row.fields[text.index]);
    if (text_b) l.text_b = std::move(row.fields[text_b->index]);
    records.push_back(std::move(l));
  }
  return finish(std::move(set), std::move(records), o);
}

std::string json_type(const nlohmann::json& j) { return j.type_name(); }

TextSet parse_jsonl(std::string_view s, TextSet set, const TextReadOptions& o) {
  const std::string& src = set.source;
  for (const auto* spec : {&o.text_column, &o.text_b_column, &o.label_column})
    GRAFT_CHECK(!is_index(*spec), src, ": column ", *spec, " is an index, but JSON Lines columns "
                "are keys: give the column by name");
  std::string text_key = o.text_column, text_b_key = o.text_b_column, label_key = o.label_column;
  bool keys_known = false;
  std::vector<Labelled> records;
  Lines lines(s);
  for (std::string_view text; lines.next(text);) {
    const int64_t line = lines.number();
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) {
      ++set.skipped_blank_lines;
      continue;
    }
    nlohmann::json j;
    try {
      check_json_depth(text, str_cat(src, " line ", line));
      j = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {
      throw Error(str_cat(src, " line ", line, ": malformed JSON (", e.what(),
                          "); expected one JSON object per line"));
    }
    GRAFT_CHECK(j.is_object(), src, " line ", line, ": a JSON ", json_type(j),
                "; expected one JSON object per line (JSON Lines)",
                j.is_array() && line == 1 ? " — a JSON array of objects is not read: write one "
                                            "object per line" : "");
    if (!keys_known) {
      std::vector<std::string> keys;
      for (const auto& item : j.items()) keys.push_back(item.key());
      auto pick = [&](const std::vector<std::string>& names) -> std::string {
        std::optional<size_t> at = find_default(keys, names);
        return at ? keys[*at] : "";
      };
      if (text_key.empty()) {
        text_key = pick(kTextNames);
        GRAFT_CHECK(!text_key.empty(), src, " line ", line, ": no text column given and none of the "
                    "usual keys (text, sentence, sentence1, review, ...) in ", quoted_list(keys),
                    "; give the text column by name");
        if (text_b_key.empty())
          for (const auto& [a, b] : kPairNames)
            if (lower_ascii(text_key) == a) text_b_key = pick({b});
      }
      if (label_key.empty() && !o.unlabeled) {
        label_key = pick(kLabelNames);
        GRAFT_CHECK(!label_key.empty(), src, " line ", line, ": no label column given and none of "
                    "the usual keys (label, labels, class, ...) in ", quoted_list(keys),
                    "; give the label column by name");
      }
      GRAFT_CHECK(text_key != label_key, src, ": the text and the label are the same key ('",
                  text_key, "')");
      GRAFT_CHECK(text_b_key.empty() || (text_b_key != label_key && text_b_key != text_key), src,
                  ": the second text key '", text_b_key, "' is also the text or label key");
      set.text_column = text_key;
      set.text_b_column = text_b_key;
      set.label_column = label_key;
      set.has_pairs = !text_b_key.empty();
      keys_known = true;
    }
    auto field = [&](const std::string& key, const char* what) -> const nlohmann::json& {
      auto it = j.find(key);
      if (it == j.end()) {
        std::vector<std::string> keys;
        for (const auto& item : j.items()) keys.push_back(item.key());
        throw Error(str_cat(src, " line ", line, ": no ", what, " key '", clip(key), "'; the keys are ",
                            quoted_list(keys)));
      }
      return *it;
    };
    Labelled l;
    l.line = line;
    auto take_text = [&](const std::string& key, const char* what, std::string& out) {
      const nlohmann::json& v = field(key, what);
      if (v.is_null()) {
        l.text_null = true;
        return;
      }
      GRAFT_CHECK(v.is_string(), src, " line ", line, ": ", what, " '", key, "' is a JSON ",
                  json_type(v), "; expected a string");
      out = v.get<std::string>();
    };
    take_text(text_key, "text", l.text);
    if (!text_b_key.empty()) take_text(text_b_key, "second-text", l.text_b);
    if (o.unlabeled) {
      records.push_back(std::move(l));
      continue;
    }
    const nlohmann::json& v = field(label_key, "label");
    if (v.is_string()) {
      l.label = trim_label(v.get<std::string>());
    } else if (v.is_number_integer()) {
      l.label = v.is_number_unsigned() ? std::to_string(v.get<uint64_t>())
                                       : std::to_string(v.get<int64_t>());
    } else if (v.is_boolean()) {
      l.label = v.get<bool>() ? "true" : "false";
    } else {
      throw Error(str_cat(src, " line ", line, ": label '", label_key, "' is a JSON ",
                          v.is_number() ? "non-integer number" : json_type(v),
                          "; expected a string, an integer or a boolean"));
    }
    records.push_back(std::move(l));
  }
  GRAFT_CHECK(!records.empty(), src, ": no records; expected one JSON object per line");
  return finish(std::move(set), std::move(records), o);
}

// Texts without labels, one per line (--unlabeled); blank lines skipped.
TextSet parse_lines(std::string_view s, TextSet set, const TextReadOptions& o) {
  std::vector<Labelled> records;
  Lines lines(s);
  for (std::string_view text; lines.next(text);) {
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (is_blank(text)) {
      ++set.skipped_blank_lines;
      continue;
    }
    Labelled l;
    l.line = lines.number();
    l.text.assign(text);
    records.push_back(std::move(l));
  }
  return finish(std::move(set), std::move(records), o);
}

std::string format_by_name(const std::string& name) {
  std::string ext = lower_ascii(fs::path(name).extension().string());
  if (ext == ".csv") return "csv";
  if (ext == ".tsv" || ext == ".tab") return "tsv";
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return "jsonl";
  return "";
}

std::string sniff_format(std::string_view s, const std::string& source) {
  std::string_view first = s.substr(0, s.find('\n'));
  size_t b = first.find_first_not_of(" \t\r");
  if (b != std::string_view::npos && first[b] == '{') return "jsonl";
  if (first.find('\t') != std::string_view::npos) return "tsv";
  if (first.find(',') != std::string_view::npos) return "csv";
  throw Error(str_cat(source, ": cannot tell whether it is CSV, TSV or JSON Lines (line 1 has no "
                      "comma, tab or '{'); expected a table with a text and a label column, or "
                      "give the format"));
}

TextSet parse_with_format(const std::string& bytes, const std::string& name, const TextReadOptions& o) {
  std::string_view s = checked_utf8(bytes, name);
  std::string format = o.format;
  if (format == "auto") {
    format = format_by_name(name);
    if (format.empty()) format = o.unlabeled ? "lines" : sniff_format(s, name);
  }
  TextSet set;
  set.source = name;
  set.format = format;
  if (format == "csv") return parse_table(s, ',', std::move(set), o);
  if (format == "tsv") return parse_table(s, '\t', std::move(set), o);
  if (format == "jsonl") return parse_jsonl(s, std::move(set), o);
  if (format == "lines" && o.unlabeled) return parse_lines(s, std::move(set), o);
  GRAFT_CHECK_USAGE(format != "folder", name, ": format 'folder' needs a directory");
  throw UsageError(str_cat("text data format must be auto, csv, tsv, jsonl or folder, not '",
                           o.format, "'"));
}

}  // namespace

std::vector<int64_t> TextSet::class_counts() const {
  std::vector<int64_t> counts(classes.size(), 0);
  for (const TextExample& e : examples)
    if (e.label >= 0 && static_cast<size_t>(e.label) < counts.size()) ++counts[e.label];
  return counts;
}

TextSet parse_text_set(const std::string& bytes, const std::string& name, const TextReadOptions& o) {
  return parse_with_format(bytes, name, o);
}


void TextSet::keep_per_class(int64_t n, uint64_t seed) {
  if (n <= 0) return;
  std::vector<std::vector<size_t>> by(classes.size());
  for (size_t i = 0; i < examples.size(); ++i) by[static_cast<size_t>(examples[i].label)].push_back(i);
  std::vector<bool> keep(examples.size(), false);
  for (size_t c = 0; c < by.size(); ++c) {
    const auto order = epoch_order(by[c].size(), mix_seed(seed, 102, c), 0, true);
    for (size_t j = 0; j < order.size() && static_cast<int64_t>(j) < n; ++j) keep[by[c][order[j]]] = true;
  }
  std::vector<TextExample> kept;
  for (size_t i = 0; i < examples.size(); ++i)
    if (keep[i]) kept.push_back(std::move(examples[i]));
  examples = std::move(kept);
}

}  // namespace graft
