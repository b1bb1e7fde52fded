// Text sets read from a path: a file (text_data.cpp parses it) or a folder
// of class files, one example per line.

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/text/text_data.h"
#include "text_data_parts.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

using namespace text_data_detail;

// The classes of a folder of class files: see the file comment of text_data.h.
TextSet read_class_folder(const std::string& dir, const TextReadOptions& o) {
  for (const auto* spec : {&o.text_column, &o.text_b_column, &o.label_column})
    GRAFT_CHECK_USAGE(spec->empty(), dir, " is a folder of class files (one text per line); "
                      "column '", *spec, "' does not apply to it");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    GRAFT_CHECK(!e.is_directory(), dir, ": holds the folder '", name, "'; expected one text file "
                "per class, one example per line");
    if (!e.is_regular_file()) continue;
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  GRAFT_CHECK(!files.empty(), dir, ": no class files; expected one text file per class");
  std::set<std::string> stems;
  for (const auto& f : files) stems.insert(f.stem().string());
  const bool by_extension = files.size() > 1 && stems.size() == 1;
  TextSet set;
  set.source = dir;
  set.format = "folder";
  std::vector<std::pair<std::string, std::string>> named;  // (class, path)
  std::set<std::string> seen;
  for (const auto& f : files) {
    std::string ext = f.extension().string();
    std::string cls = by_extension ? (ext.empty() ? "" : ext.substr(1)) : f.stem().string();
    GRAFT_CHECK(!cls.empty(), dir, ": cannot name a class after the file '", f.filename().string(),
                "'");
    GRAFT_CHECK(seen.insert(cls).second, dir, ": two files give the class '", cls, "'");
    named.emplace_back(cls, f.string());
  }
  std::vector<Labelled> records;
  for (const auto& [cls, path] : named) {
    const std::string bytes = read_file(path);
    std::string_view s = checked_utf8(bytes, path);
    Lines lines(s);
    for (std::string_view text; lines.next(text);) {
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      Labelled l;
      l.line = lines.number();
      l.label = cls;
      l.text.assign(text);
      if (is_blank(l.text)) {
        GRAFT_CHECK(!o.strict, path, " line ", l.line, ": empty text; expected one example per line "
                    "(empty lines are skipped unless strict)");
        ++set.skipped_empty;
        continue;
      }
      records.push_back(std::move(l));
    }
  }
  return finish(std::move(set), std::move(records), o);
}

}  // namespace

TextSet read_text_set(const std::string& path, const TextReadOptions& o) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    GRAFT_CHECK_USAGE(o.format == "auto" || o.format == "folder", path, " is a folder; format '",
                      o.format, "' needs a file (folders are read as one file per class)");
    return read_class_folder(path, o);
  }
  GRAFT_CHECK_USAGE(o.format != "folder", path, ": format 'folder' needs a directory");
  return parse_text_set(read_file(path), path, o);
}

}  // namespace graft
