#pragma once
/// BERT's WordPiece tokenizer, from a vocab.txt, without LibTorch.
///
/// Text goes through the two stages of Hugging Face's BertTokenizer (and of
/// google-research/bert tokenization.py):
///  1. basic tokenisation: drop NUL, U+FFFD and control characters, turn
///     whitespace into word breaks, make every CJK ideograph its own word,
///     lower-case and strip accents (NFD, then drop category Mn) for uncased
///     vocabularies, split every punctuation character off as its own word;
///  2. WordPiece: each word becomes the longest vocabulary entry that starts
///     it, then the longest "##" entry that continues it, and so on; a word
///     with a piece that is in no entry, or longer than
///     max_input_chars_per_word characters, becomes [UNK].
/// The special tokens [PAD] [UNK] [CLS] [SEP] [MASK] written in the text are
/// kept as those tokens, as Hugging Face does by default.
///
/// Where Hugging Face's Python (BertTokenizer) and Rust (BertTokenizerFast)
/// tokenizers differ, graft follows the Python one and google-research/bert
/// (CJK blocks, truncation of pairs), except for unassigned code points,
/// which it keeps (so they become [UNK]) as the Rust one does: a character
/// newer than graft's Unicode tables then gives what a newer tokenizer gives,
/// not nothing. Lower case is per character (no final sigma), as in both
/// Hugging Face tokenizers. The Python one also applies NFC first, which only
/// matters with strip_accents off (decomposed accents stay decomposed in
/// graft, as in the Rust one).
///
/// Unicode data (classes, lower case, NFD) come from tables generated from
/// Python's unicodedata (scripts/gen_unicode_tables.py); unicode_version()
/// names the version.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace graft {

/// Options of the tokenizer; the defaults are those of bert-base-uncased.
struct WordPieceOptions {
  /// Lower-case the text (an uncased vocabulary). Hugging Face: do_lower_case.
  bool lower_case = true;
  /// Strip accents (NFD, then drop non-spacing marks). Unset: the value of
  /// lower_case, as Hugging Face does.
  std::optional<bool> strip_accents;
  /// Put spaces around CJK ideographs so that each is its own word.
  bool tokenize_chinese_chars = true;
  /// Longer words (in Unicode characters, after basic tokenisation) become [UNK].
  int max_input_chars_per_word = 100;
  /// When true, "[CLS]" etc. written in the text are tokenised as plain text
  /// (Hugging Face: split_special_tokens). Default false: they are the special tokens.
  bool split_special_tokens = false;
};

/// The model inputs of one text or text pair.
struct Encoding {
  std::vector<int64_t> input_ids;       ///< [CLS] A [SEP] (B [SEP]) ([PAD] ...)
  std::vector<int64_t> token_type_ids;  ///< 0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding
  std::vector<int64_t> attention_mask;  ///< 1 for tokens, 0 for padding
  int64_t num_truncated = 0;            ///< tokens of A and B dropped to fit max_length
};

class WordPiece {
 public:
  /// Reads a vocab.txt: one token per line, id = line index (0-based); "\n"
  /// or "\r\n" line ends; a UTF-8 byte order mark is skipped. Throws
  /// graft::Error naming the file (and line) if it cannot be read, is empty,
  /// has an empty line, invalid UTF-8, a duplicate token, or lacks one of
  /// [PAD] [UNK] [CLS] [SEP] [MASK].
  static WordPiece from_file(const std::string& vocab_path, WordPieceOptions options = {});
  /// The same from the content of a vocab.txt; `source` names it in errors.
  static WordPiece from_text(std::string vocab_text, WordPieceOptions options = {},
                             const std::string& source = "vocabulary");

  /// A tokenizer over `tokens` (id = index); `source` names them in errors.
  /// Same checks as from_file.
  WordPiece(std::vector<std::string> tokens, WordPieceOptions options,
            std::string source = "vocabulary");

  /// The tokens of a text (no [CLS]/[SEP]). `text` must be UTF-8: invalid
  /// UTF-8 throws graft::Error giving the byte offset and value.
  std::vector<std::string> tokenize(std::string_view text) const;

  /// The ids of tokenize(text).
  std::vector<int64_t> ids(std::string_view text) const;

  /// [CLS] A [SEP] or [CLS] A [SEP] B [SEP], at most max_length tokens.
  /// Longer inputs are cut at the end, longest first (as google-research's
  /// _truncate_seq_pair and Hugging Face's Python tokenizer: one token at a
  /// time from the longer of A and B, from B when they are as long), and
  /// counted in num_truncated. pad_to_max appends [PAD] up to max_length.
  /// Requires max_length >= 2 (>= 3 with B); throws graft::Error otherwise.
  Encoding encode(std::string_view a, std::optional<std::string_view> b = std::nullopt,
                  int max_length = 512, bool pad_to_max = false) const;

  /// Number of tokens in the vocabulary.
  size_t size() const { return tokens_.size(); }
  /// The token of an id; throws graft::Error for an id outside [0, size()).
  const std::string& token(int64_t id) const;
  /// The id of a vocabulary entry, or nullopt.
  std::optional<int64_t> find(std::string_view token) const;

  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t mask_id() const { return mask_id_; }
  const WordPieceOptions& options() const { return options_; }

  /// Version of the Unicode data built in ("14.0.0").
  static const char* unicode_version();

 private:
  // Appends the ids of text to out (the whole pipeline).
  void append_ids(std::string_view text, std::vector<int64_t>& out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  WordPieceOptions options_;
  bool strip_accents_ = true;
  int64_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, mask_id_ = 0;
  // Longest entry in characters: word-initial, and "##" entries without "##".
  int max_piece_chars_ = 0, max_suffix_chars_ = 0;
  // Special tokens recognised in the text: (text, id), longest first.
  std::vector<std::pair<std::string, int64_t>> specials_;
};

}  // namespace graft
