#include "graft/text/wordpiece.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "graft/core/error.h"
#include "graft/core/files.h"
#include "test_util.h"

namespace graft {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::vector<int64_t>;

// The vocabulary of google-research/bert's tokenization_test.py, with the
// special tokens graft requires.
WordPiece google_test_vocab(WordPieceOptions options = {}) {
  return WordPiece({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "want", "##want", "##ed", "wa",
                    "un", "runn", "##ing", ",", "low", "lowest", "a", "b", "##b", "é", "e", "!",
                    "hello", "##lo", "x", "中", "文", "[", "]", "cl", "##s"},
                   options, "test vocabulary");
}

std::string bert_vocab() { return test::shared_data("bert_vocab/vocab.txt"); }

void write(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

TEST(WordPiece, GreedyLongestMatchFirstWithContinuations) {
  WordPiece wp = google_test_vocab();
  EXPECT_EQ(wp.tokenize("UNwant\u00E9d,running"), (Strings{"un", "##want", "##ed", ",", "runn", "##ing"}));
  EXPECT_EQ(wp.ids("UNwant\u00E9d,running"), (Ids{9, 6, 7, 12, 10, 11}));
  // "lowest" is one entry: the longest match wins over "low".
  EXPECT_EQ(wp.tokenize("lowest low"), (Strings{"lowest", "low"}));
  // A word with a piece in no entry is one [UNK], whatever matched before.
  EXPECT_EQ(wp.tokenize("unwantedX running"), (Strings{"[UNK]", "runn", "##ing"}));
  EXPECT_EQ(wp.tokenize("abb bab"), (Strings{"a", "##b", "##b", "[UNK]"}));  // no "##a"
  EXPECT_TRUE(wp.tokenize("").empty());
  EXPECT_TRUE(wp.tokenize(" \t\r\n ").empty());
}

TEST(WordPiece, MaxInputCharsPerWordCountsCharacters) {
  WordPieceOptions o;
  o.max_input_chars_per_word = 3;
  WordPiece wp = google_test_vocab(o);
  EXPECT_EQ(wp.tokenize("abb"), (Strings{"a", "##b", "##b"}));
  EXPECT_EQ(wp.tokenize("abbb"), (Strings{"[UNK]"}));
  // Characters, not bytes: "ééé" is 6 bytes and 3 characters (accents stripped: "eee").
  EXPECT_EQ(wp.tokenize("ééé ééé!"), (Strings{"[UNK]", "[UNK]", "!"}));
  WordPiece bert = google_test_vocab();
  EXPECT_EQ(bert.tokenize(std::string(100, 'b')).size(), 100u);
  EXPECT_EQ(bert.tokenize(std::string(101, 'b')), (Strings{"[UNK]"}));
}

TEST(WordPiece, BasicTokenizerCleansSplitsAndLowerCases) {
  WordPiece wp = google_test_vocab();
  // Control characters, NUL and U+FFFD vanish without splitting the word.
  const char raw[] = "he\0l\x7f" "lo\xEF\xBF\xBD";
  EXPECT_EQ(wp.tokenize(std::string(raw, sizeof raw - 1)), (Strings{"hello"}));
  EXPECT_EQ(wp.tokenize("he\u200Bllo"), (Strings{"hello"}));  // U+200B is Cf
  // Every Zs space, \t \n \r, and U+2028 split words.
  EXPECT_EQ(wp.tokenize("a\u00A0b\u3000a\tb\u2028a"), (Strings{"a", "b", "a", "b", "a"}));
  // Punctuation (ASCII ranges, and P* anywhere) is its own word.
  EXPECT_EQ(wp.tokenize("hello!!a"), (Strings{"hello", "!", "!", "a"}));
  EXPECT_EQ(wp.tokenize("a\u00BFb"), (Strings{"a", "[UNK]", "b"}));  // ¿ is Po
  // CJK ideographs are words of their own; kana and Hangul are not CJK here.
  EXPECT_EQ(wp.tokenize("x中文x"), (Strings{"x", "中", "文", "x"}));
  // Lower case, then NFD, then drop Mn: É -> e; "Ｈ" (fullwidth) has no NFD.
  EXPECT_EQ(wp.tokenize("HELLO \u00C9 E\u0301 \uFF28"), (Strings{"hello", "e", "e", "[UNK]"}));
}

TEST(WordPiece, UnicodeEdgeCases) {
  WordPiece wp({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "i", "\U0001D165", "##\U0001D16D",
                "\u1112", "##\u1161", "##\u11AB", "\u03C3", "##\u03C3", "\U0002B820"},
               {}, "test vocabulary");
  // Unassigned code points (U+0378) are kept, so the word is [UNK], as in
  // Hugging Face's Rust tokenizer; its Python one would drop them.
  EXPECT_EQ(wp.tokenize("a\u0378"), (Strings{"[UNK]"}));
  // NFD puts combining classes in order: U+1D16D (226) after U+1D165 (216).
  EXPECT_EQ(wp.tokenize("\U0001D16D\U0001D165"), (Strings{"\U0001D165", "##\U0001D16D"}));
  // Hangul syllables decompose to jamo; U+0130 lower-cases to i + U+0307.
  EXPECT_EQ(wp.tokenize("\uD55C"), (Strings{"\u1112", "##\u1161", "##\u11AB"}));
  EXPECT_EQ(wp.tokenize("\u0130"), (Strings{"i"}));
  // Characters are lower-cased one by one: no final sigma, as Hugging Face.
  EXPECT_EQ(wp.tokenize("\u03A3\u03A3"), (Strings{"\u03C3", "##\u03C3"}));
  // U+2B820.. are CJK in google-research/bert and transformers (the Rust
  // tokenizer starts that block at U+2B920).
  EXPECT_EQ(wp.tokenize("a\U0002B820a"), (Strings{"a", "\U0002B820", "a"}));
}

TEST(WordPiece, CasedOptionsKeepCaseAndAccents) {
  WordPieceOptions cased;
  cased.lower_case = false;
  WordPiece wp = google_test_vocab(cased);
  EXPECT_FALSE(wp.options().lower_case);
  EXPECT_EQ(wp.tokenize("hello Hello é"), (Strings{"hello", "[UNK]", "é"}));
  cased.strip_accents = true;
  WordPiece stripped = google_test_vocab(cased);
  EXPECT_EQ(stripped.tokenize("é E\u0301"), (Strings{"e", "[UNK]"}));
  WordPieceOptions keep_accents;
  keep_accents.strip_accents = false;
  WordPiece lower_only = google_test_vocab(keep_accents);
  EXPECT_EQ(lower_only.tokenize("\u00C9"), (Strings{"é"}));
  WordPieceOptions no_cjk;
  no_cjk.tokenize_chinese_chars = false;
  EXPECT_EQ(google_test_vocab(no_cjk).tokenize("x中文"), (Strings{"[UNK]"}));
}

TEST(WordPiece, SpecialTokensInTheTextAreKeptUnlessSplit) {
  WordPiece wp = google_test_vocab();
  EXPECT_EQ(wp.tokenize("hello[SEP]x [MASK] [cls]"),
            (Strings{"hello", "[SEP]", "x", "[MASK]", "[", "cl", "##s", "]"}));
  WordPieceOptions o;
  o.split_special_tokens = true;
  EXPECT_EQ(google_test_vocab(o).tokenize("[CLS]"), (Strings{"[", "cl", "##s", "]"}));
}

TEST(WordPiece, InvalidUtf8TextIsAnError) {
  WordPiece wp = google_test_vocab();
  std::string msg = test::error_of([&] { wp.ids("caf\xE9 au lait"); });
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("0xE9 at offset 3"), std::string::npos) << msg;
  for (std::string bad : {"\x80", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "ab\xE4\xB8"}) {
    EXPECT_NE(test::error_of([&] { wp.tokenize(bad); }).find("not valid UTF-8"), std::string::npos)
        << "bytes of length " << bad.size();
  }
}

TEST(WordPiece, VocabularyErrorsNameTheFileAndLine) {
  test::TempDir dir;
  const std::string specials = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  auto error_for = [&](const std::string& data) {
    write(dir / "vocab.txt", data);
    return test::error_of([&] { WordPiece::from_file(dir / "vocab.txt"); });
  };
  std::string msg = error_for("");
  EXPECT_NE(msg.find("vocab.txt' is empty"), std::string::npos) << msg;
  msg = error_for(specials + "a\n\nb\n");
  EXPECT_NE(msg.find("line 7 is empty"), std::string::npos) << msg;
  msg = error_for(specials + "a\nb\na\n");
  EXPECT_NE(msg.find("line 8: token 'a' repeats line 6"), std::string::npos) << msg;
  msg = error_for(specials + "caf\xE9\n");
  EXPECT_NE(msg.find("line 6: invalid UTF-8 (byte 0xE9 at column 4)"), std::string::npos) << msg;
  msg = error_for("[PAD]\n[UNK]\n[SEP]\nhello\n");
  EXPECT_NE(msg.find("has no [CLS], [MASK]"), std::string::npos) << msg;
  msg = test::error_of([&] { WordPiece::from_file(dir / "absent.txt"); });
  EXPECT_NE(msg.find("absent.txt"), std::string::npos) << msg;

  // CRLF line ends and a byte order mark are accepted; no final newline is fine.
  write(dir / "crlf.txt", "\xEF\xBB\xBF" + std::string("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhi"));
  WordPiece wp = WordPiece::from_file(dir / "crlf.txt");
  EXPECT_EQ(wp.size(), 6u);
  EXPECT_EQ(wp.pad_id(), 0);
  EXPECT_EQ(wp.find("hi"), 5);
  EXPECT_EQ(wp.tokenize("HI"), (Strings{"hi"}));
}

TEST(WordPiece, LooksUpTokensAndIds) {
  WordPiece wp = google_test_vocab();
  EXPECT_EQ(wp.token(5), "want");
  EXPECT_EQ(wp.find("##want"), 6);
  EXPECT_EQ(wp.find("nope"), std::nullopt);
  EXPECT_NE(test::error_of([&] { wp.token(1000); }).find("token id 1000 is outside"), std::string::npos);
  EXPECT_EQ(wp.cls_id(), 2);
  EXPECT_EQ(wp.sep_id(), 3);
  EXPECT_EQ(wp.mask_id(), 4);
  EXPECT_EQ(wp.unk_id(), 1);
  EXPECT_STREQ(WordPiece::unicode_version(), "14.0.0");
}

TEST(WordPiece, EncodesSinglesAndPairsWithTypesAndMask) {
  WordPiece wp = google_test_vocab();
  Encoding e = wp.encode("want a", std::nullopt, 16);
  EXPECT_EQ(e.input_ids, (Ids{2, 5, 15, 3}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 1}));
  EXPECT_EQ(e.num_truncated, 0);
  e = wp.encode("want", std::string_view("a b"), 16, /*pad_to_max=*/false);
  EXPECT_EQ(e.input_ids, (Ids{2, 5, 3, 15, 16, 3}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 1, 1, 1}));
  e = wp.encode("want", std::string_view("a"), 8, /*pad_to_max=*/true);
  EXPECT_EQ(e.input_ids, (Ids{2, 5, 3, 15, 3, 0, 0, 0}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 1, 1, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (Ids{1, 1, 1, 1, 1, 0, 0, 0}));
}

TEST(WordPiece, TruncatesLongestFirstOneTokenAtATime) {
  WordPiece wp = google_test_vocab();
  // A single text keeps its first max_length - 2 tokens.
  Encoding e = wp.encode("a b a b a", std::nullopt, 5);
  EXPECT_EQ(e.input_ids, (Ids{2, 15, 16, 15, 3}));
  EXPECT_EQ(e.num_truncated, 2);
  // A: 6 tokens, B: 2 tokens, room for 4: A loses 4 (it stays the longer one).
  e = wp.encode("a a a a a a", std::string_view("b b"), 7);
  EXPECT_EQ(e.input_ids, (Ids{2, 15, 15, 3, 16, 16, 3}));
  EXPECT_EQ(e.num_truncated, 4);
  // As long: B loses the token first, so A keeps the odd one (google-research
  // _truncate_seq_pair and Hugging Face's Python tokenizer; the Rust one gives
  // it to B).
  e = wp.encode("a a a a", std::string_view("b b b b"), 8);
  EXPECT_EQ(e.input_ids, (Ids{2, 15, 15, 15, 3, 16, 16, 3}));
  EXPECT_EQ(e.token_type_ids, (Ids{0, 0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(e.num_truncated, 3);
  e = wp.encode("a a", std::string_view("b b b b b b"), 6, /*pad_to_max=*/true);
  EXPECT_EQ(e.input_ids, (Ids{2, 15, 15, 3, 16, 3}));
  // Room for nothing but the special tokens.
  e = wp.encode("a a", std::string_view("b"), 3);
  EXPECT_EQ(e.input_ids, (Ids{2, 3, 3}));
  EXPECT_EQ(e.num_truncated, 3);
}

TEST(WordPiece, RejectsAMaxLengthWithoutRoomForSpecialTokens) {
  WordPiece wp = google_test_vocab();
  std::string msg = test::error_of([&] { wp.encode("a", std::nullopt, 1); });
  EXPECT_NE(msg.find("max_length is 1: expected at least 2"), std::string::npos) << msg;
  msg = test::error_of([&] { wp.encode("a", std::string_view("b"), 2); });
  EXPECT_NE(msg.find("max_length is 2: expected at least 3"), std::string::npos) << msg;
}

TEST(WordPiece, BertBaseUncasedVocabulary) {
  if (bert_vocab().empty()) GTEST_SKIP() << "../shared/data/bert_vocab/vocab.txt is absent";
  WordPiece wp = WordPiece::from_file(bert_vocab());
  EXPECT_EQ(wp.size(), 30522u);
  EXPECT_EQ(wp.pad_id(), 0);
  EXPECT_EQ(wp.unk_id(), 100);
  EXPECT_EQ(wp.cls_id(), 101);
  EXPECT_EQ(wp.sep_id(), 102);
  EXPECT_EQ(wp.mask_id(), 103);
  // Values of bert-base-uncased in Hugging Face's documentation and tests.
  EXPECT_EQ(wp.encode("Hello, my dog is cute").input_ids, (Ids{101, 7592, 1010, 2026, 3899, 2003, 10140, 102}));
  EXPECT_EQ(wp.tokenize("unaffable"), (Strings{"una", "##ffa", "##ble"}));
  // Hangul decomposes to jamo under NFD, as in Hugging Face.
  EXPECT_EQ(wp.tokenize("\uD55C")[0], "\u1112");
}

// Every text of the parity fixture: ids equal to those of the node reference.
TEST(WordPiece, TokenIdsEqualTheNodeReferenceOnEveryTextDataset) {
  std::optional<nlohmann::json> fixture = test::parity_fixture("wordpiece_parity", "wordpiece_fixtures.py");
  if (HasFailure()) return;
  if (!fixture)
    GTEST_SKIP() << "no wordpiece_parity.json (tests/reference/wordpiece_fixtures.py needs node and npm)";
  const nlohmann::json& fx = *fixture;
  WordPiece wp = WordPiece::from_file(fx.at("vocab").get<std::string>());
  std::map<std::string, int> per_dataset;
  int differ = 0;
  for (const auto& t : fx.at("texts")) {
    const std::string text = t.at("text").get<std::string>();
    const std::string source = t.at("source").get<std::string>();
    Ids want = t.at("ids").get<Ids>();
    Ids got = wp.ids(text);
    if (got != want && ++differ <= 20) {
      ADD_FAILURE() << source << ": " << nlohmann::json(text).dump() << "\n  graft:     "
                    << nlohmann::json(got).dump() << "\n  reference: " << nlohmann::json(want).dump();
    }
    ++per_dataset[source.substr(0, source.find('/'))];
  }
  EXPECT_EQ(differ, 0) << "texts whose ids differ from " << fx.at("reference");
  EXPECT_GE(per_dataset.size(), 7u);  // tricky strings + the six text datasets
  for (const auto& [dataset, n] : per_dataset) {
    std::cout << "[ wordpiece ] " << dataset << ": " << n << " texts compared\n";
  }
}

// Sentence pairs: [CLS] A [SEP] B [SEP] with type ids; truncated pairs follow
// the one-token-at-a-time rule, which the Rust reference matches except when
// both sequences must be cut to an odd total (then it gives B the extra token).
TEST(WordPiece, PairEncodingsEqualTheNodeReference) {
  std::optional<nlohmann::json> fixture = test::parity_fixture("wordpiece_parity", "wordpiece_fixtures.py");
  if (HasFailure()) return;
  if (!fixture) GTEST_SKIP() << "no wordpiece_parity.json (tests/reference/wordpiece_fixtures.py)";
  const nlohmann::json& fx = *fixture;
  WordPiece wp = WordPiece::from_file(fx.at("vocab").get<std::string>());
  int compared = 0, rust_rule_differs = 0;
  for (const auto& p : fx.at("pairs")) {
    const std::string a = p.at("a"), b = p.at("b");
    const int max_length = p.at("max_length");
    Ids ids_a = p.at("ids_a").get<Ids>(), ids_b = p.at("ids_b").get<Ids>();
    Encoding e = wp.encode(a, std::string_view(b), max_length > 0 ? max_length : 1 << 30);
    // The expected encoding, from the reference's own ids of A and B.
    size_t la = ids_a.size(), lb = ids_b.size();
    const size_t budget = max_length > 0 ? static_cast<size_t>(max_length - 3) : la + lb;
    while (la + lb > budget) (la > lb ? la : lb) -= 1;
    Ids want{wp.cls_id()};
    want.insert(want.end(), ids_a.begin(), ids_a.begin() + static_cast<std::ptrdiff_t>(la));
    want.push_back(wp.sep_id());
    want.insert(want.end(), ids_b.begin(), ids_b.begin() + static_cast<std::ptrdiff_t>(lb));
    want.push_back(wp.sep_id());
    EXPECT_EQ(e.input_ids, want) << a << " || " << b << " @" << max_length;
    EXPECT_EQ(e.num_truncated, static_cast<int64_t>(ids_a.size() + ids_b.size() - la - lb));
    Ids types(la + 2, 0);
    types.resize(la + lb + 3, 1);
    EXPECT_EQ(e.token_type_ids, types);
    const Ids ref = p.at("input_ids").get<Ids>();
    if (ref == want) {
      EXPECT_EQ(e.token_type_ids, p.at("token_type_ids").get<Ids>());
      EXPECT_EQ(e.attention_mask, p.at("attention_mask").get<Ids>());
    } else {
      // Only the odd-total tie may differ: same length, A one token shorter.
      ++rust_rule_differs;
      EXPECT_EQ(ref.size(), want.size()) << a << " || " << b << " @" << max_length;
      EXPECT_EQ(p.at("token_type_ids").get<Ids>().size() - static_cast<size_t>(std::count(
                    p.at("token_type_ids").begin(), p.at("token_type_ids").end(), 1)),
                la + 1)
          << "reference gives A one token less";
    }
    ++compared;
  }
  EXPECT_GT(compared, 0);
  std::cout << "[ wordpiece ] " << compared << " pairs compared; " << rust_rule_differs
            << " truncated differently by the Rust rule\n";
}

}  // namespace
}  // namespace graft
