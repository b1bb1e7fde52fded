#pragma once
/// Labelled text sets for `graft train --task text`: CSV, TSV, JSON Lines, or
/// a folder of class files, read into (text, optional second text, label).
/// No LibTorch.
///
/// Formats (TextReadOptions::format, "auto" by default):
///  - csv: RFC 4180. Fields separated by ',', records by "\n" or "\r\n". A
///    field that starts with '"' is quoted: it runs to the next lone '"', may
///    hold ',', '"' (written "") and line breaks, and must be followed by ',',
///    a line end or the end of the file. A '"' inside an unquoted field is
///    kept as it is (as Python's csv module does).
///  - tsv: fields separated by tabs, records by "\n" or "\r\n", every
///    character literal: no quoting, as in the IANA text/tab-separated-values
///    definition and `cut`/`awk`. This is deliberately not what Python's csv
///    module does with delimiter='\t' (it treats a leading '"' as a quote):
///    on the SMS Spam Collection that merges messages that start with a '"'
///    with the lines after them and loses two of the 5,574. Set
///    TextReadOptions::tsv_quoting for TSV files written with csv-style quotes.
///  - jsonl: one JSON object per line (blank lines skipped), columns are its
///    keys. Texts must be strings (null counts as empty); labels may be
///    strings, integers or booleans (1 becomes "1", true becomes "true").
///  - folder (a directory): one file per class, one example per line. The
///    class of a file is its name without the last extension ("pos.txt" is
///    "pos"), or, when all files share that stem, the extension
///    ("rt-polarity.pos" and "rt-polarity.neg" are "pos" and "neg"). Hidden
///    files are skipped; sub-folders are an error.
/// "auto" picks folder for a directory; csv for ".csv"; tsv for ".tsv" and
/// ".tab"; jsonl for ".jsonl", ".ndjson" and ".json"; otherwise it looks at
/// the first line: '{' means jsonl, a tab tsv, a comma csv.
///
/// Every format: UTF-8 (a byte order mark at the start is skipped; any
/// invalid byte is an error giving its offset and line); empty lines between
/// records are skipped and counted (skipped_blank_lines). Texts are kept as
/// they are (no trimming); labels are trimmed of spaces and tabs.
///
/// Columns (text_column, text_b_column, label_column): a name, or a 0-based
/// index written in decimal digits (a string of digits is always an index).
/// Names match a header cell exactly, else ASCII-case-insensitively when only
/// one cell matches that way. JSON Lines take names only.
///
/// Header (CSV/TSV; header = "auto" | "yes" | "no"). With "auto":
///  - a column given by name, or a column left out, means line 1 is a header;
///  - with every column given by index, line 1 is a header when its label
///    cell is not a label: with fixed classes, when it is not among them;
///    otherwise when no other line has that label. (So "sentence<TAB>label"
///    is a header, while a file without header whose first line has the only
///    example of a class would lose that line: pass header "no" there.)
/// Left-out columns are found by name in the header, ASCII-case-insensitively,
/// taking the first of these that is present (Hugging Face's usual names):
///  - text: text, sentence, sentence1, text_a, premise, question1, review,
///    content, document, sms;
///  - second text (only with the matching first): sentence2, text_b,
///    hypothesis, question2;
///  - label: label, labels, class, category, target, sentiment.
/// When they are not there, the error lists the header's cells.
///
/// Labels and classes: with TextReadOptions::classes empty, the classes are
/// the distinct labels sorted by byte value (as Hugging Face's ClassLabel
/// sorts them; "10" sorts before "9"); otherwise every label must be one of
/// them (the training classes of a validation or test file) and the order is
/// theirs. An empty label is an error.
///
/// Empty texts (nothing but Unicode white space, or a JSON null), and pairs
/// where either text is empty, are skipped and counted in skipped_empty; with
/// strict they are an error.
///
/// Errors (graft::Error) name the file and line, the value seen and what was
/// expected: a missing column (listing the columns there are), a record with
/// a different number of fields than line 1, invalid UTF-8, an unterminated
/// quote, text after a closing quote, malformed JSON, a label not among the
/// fixed classes, a set with no examples.

#include <cstdint>
#include <string>
#include <vector>

namespace graft {

/// One labelled text (or text pair).
struct TextExample {
  std::string text;
  std::string text_b;  ///< the second text of a pair; empty without pairs
  int label = -1;      ///< index into TextSet::classes
  int64_t line = 0;    ///< 1-based line of the file where the record starts
};

/// How to read a text set. Defaults read a file with a header naming its
/// text and label columns the Hugging Face way ("sentence,label").
struct TextReadOptions {
  /// "auto", "csv", "tsv", "jsonl" or "folder"; see the file comment.
  std::string format = "auto";
  /// Column of the text: a name, a 0-based index, or empty to find it by name.
  std::string text_column;
  /// Column of the second text of a pair: a name, an index, or empty for
  /// none (with text_column also empty: found by name, e.g. sentence2).
  std::string text_b_column;
  /// Column of the label: a name, a 0-based index, or empty to find it by name.
  std::string label_column;
  /// "auto", "yes" or "no": whether line 1 of a CSV/TSV file is a header.
  std::string header = "auto";
  /// Fixed classes in their order (the training classes, for a validation or
  /// test file); empty: the sorted distinct labels.
  std::vector<std::string> classes;
  /// Empty texts are an error instead of skipped and counted.
  bool strict = false;
  /// Read '"' in TSV files as CSV quoting (Python csv with delimiter='\t').
  bool tsv_quoting = false;
  /// Texts without labels (`graft train --unlabeled`, issue 19): no label
  /// column is looked for, every example's label is -1 and classes stay
  /// empty. With format "auto", a file whose name does not say csv, tsv or
  /// jsonl is read as format "lines": one text per line, blank lines
  /// skipped. A CSV/TSV file has a header unless header is "no" or the
  /// text column is given by index.
  bool unlabeled = false;
};

/// A labelled text set as read.
struct TextSet {
  std::string source;                  ///< the path (or name) read
  std::string format;                  ///< csv, tsv, jsonl or folder
  std::vector<std::string> header;     ///< line 1 when it was a header, else empty
  std::string text_column, text_b_column, label_column;  ///< as used: a name, or "#N" for index N
  std::vector<std::string> classes;    ///< label index -> class name
  std::vector<TextExample> examples;   ///< in file order (folder: class files in name order)
  int64_t skipped_empty = 0;           ///< empty or white-space texts skipped
  int64_t skipped_blank_lines = 0;     ///< empty lines between records skipped
  bool has_pairs = false;              ///< examples carry text_b

  /// Number of examples of each class, indexed like classes.
  std::vector<int64_t> class_counts() const;
  /// Keeps at most `n` examples of each class (n > 0): per class a shuffle
  /// seeded by mix_seed(seed, 102, class), its first n, in file order
  /// (`--per-class` of graft train --task text and graft score --task text).
  void keep_per_class(int64_t n, uint64_t seed);
};

/// Reads a text set from a file or a folder of class files (see above).
/// Throws graft::Error naming the path, line and value on bad input.
TextSet read_text_set(const std::string& path, const TextReadOptions& options = {});

/// The same from a file's bytes; `name` is used in errors and, with format
/// "auto", for its extension. Format "folder" is not possible here.
TextSet parse_text_set(const std::string& bytes, const std::string& name,
                       const TextReadOptions& options = {});

}  // namespace graft
