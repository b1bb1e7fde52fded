#include "graft/text/text_data.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "graft/core/error.h"
#include "test_util.h"

namespace graft {
namespace {

using test::error_of;
using test::shared_data;
using test::TempDir;

namespace fs = std::filesystem;

using Counts = std::vector<int64_t>;

using test::write_bytes;

TextReadOptions columns(const std::string& text, const std::string& label) {
  TextReadOptions o;
  o.text_column = text;
  o.label_column = label;
  return o;
}

/// Bytes that parse_text_set refuses: its message holds `message`.
struct Refused {
  std::string bytes, name;
  TextReadOptions options;
  std::string message;
};

void expect_refused(const std::vector<Refused>& cases) {
  for (const Refused& c : cases) {
    const std::string err = error_of([&] { parse_text_set(c.bytes, c.name, c.options); });
    EXPECT_NE(err.find(c.message), std::string::npos) << c.name << ": " << err;
  }
}

// ---------------------------------------------------------------------------
// The datasets of ../shared/data. Expected counts are those of
// shared/data/PROVENANCE.md (checked there with Python's csv module), not
// values read back from graft.

#define REQUIRE_DATA(var, rel)                                  \
  const std::string var = shared_data(rel);                     \
  if (var.empty()) GTEST_SKIP() << "../shared/data/" rel " is absent"

TEST(TextDataShared, AgNewsTsvWithoutHeader) {
  REQUIRE_DATA(dev_path, "ag_news/dev.tsv");
  REQUIRE_DATA(test_path, "ag_news/test.tsv");
  // text<TAB>label, no header: "Sci/Tech" on line 1 is a label of other lines.
  TextSet dev = read_text_set(dev_path, columns("0", "1"));
  EXPECT_EQ(dev.format, "tsv");
  EXPECT_TRUE(dev.header.empty());
  EXPECT_EQ(dev.classes, (std::vector<std::string>{"Business", "Sci/Tech", "Sports", "World"}));
  EXPECT_EQ(dev.examples.size(), 10001u);
  EXPECT_EQ(dev.class_counts(), (Counts{2496, 2538, 2458, 2509}));
  EXPECT_EQ(dev.skipped_empty, 0);
  EXPECT_EQ(dev.examples[0].line, 1);
  EXPECT_EQ(dev.examples[0].text.rfind("p2pnet.net News:- The US Federal Trade", 0), 0u);
  EXPECT_EQ(dev.classes[dev.examples[0].label], "Sci/Tech");
  EXPECT_EQ(dev.text_column, "#0");

  TextReadOptions o = columns("0", "1");
  o.classes = dev.classes;  // the training classes, as for a test split
  TextSet test = read_text_set(test_path, o);
  EXPECT_TRUE(test.header.empty());
  EXPECT_EQ(test.examples.size(), 7600u);
  EXPECT_EQ(test.class_counts(), (Counts{1900, 1900, 1900, 1900}));
  EXPECT_EQ(test.examples[0].text.rfind("Unions representing workers at Turner   Newall", 0), 0u);
}

TEST(TextDataShared, SmsSpamHeaderFoundByName) {
  REQUIRE_DATA(path, "sms_spam/SMSSpamCollection");
  // No extension: sniffed as TSV; header "Label<TAB>SMS" gives both columns.
  TextSet s = read_text_set(path);
  EXPECT_EQ(s.format, "tsv");
  EXPECT_EQ(s.header, (std::vector<std::string>{"Label", "SMS"}));
  EXPECT_EQ(s.text_column, "SMS");
  EXPECT_EQ(s.label_column, "Label");
  EXPECT_EQ(s.classes, (std::vector<std::string>{"ham", "spam"}));
  EXPECT_EQ(s.examples.size(), 5574u);
  EXPECT_EQ(s.class_counts(), (Counts{4827, 747}));
  EXPECT_EQ(s.examples[0].line, 2);
  EXPECT_EQ(s.examples[0].text.rfind("Go until jurong point", 0), 0u);
  // Literal TSV keeps a message that starts with '"' (line 284) as it is.
  bool found = false;
  for (const auto& e : s.examples)
    if (e.line == 284) found = e.text.rfind("\"Wen u miss someone", 0) == 0;
  EXPECT_TRUE(found);
  // The same by name and by index.
  EXPECT_EQ(read_text_set(path, columns("SMS", "Label")).examples.size(), 5574u);
  EXPECT_EQ(read_text_set(path, columns("1", "0")).examples.size(), 5574u);
  // csv-style quoting is wrong for this file, and says so instead of merging lines.
  TextReadOptions q;
  q.tsv_quoting = true;
  EXPECT_NE(error_of([&] { read_text_set(path, q); }).find("after a closing quote"), std::string::npos);
}

TEST(TextDataShared, Sst2HeaderAndSplits) {
  REQUIRE_DATA(train_path, "sst2/train.tsv");
  REQUIRE_DATA(dev_path, "sst2/dev.tsv");
  REQUIRE_DATA(test_path, "sst2/test.tsv");
  TextSet train = read_text_set(train_path);
  EXPECT_EQ(train.header, (std::vector<std::string>{"sentence", "label"}));
  EXPECT_EQ(train.classes, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(train.examples.size(), 60614u);
  EXPECT_EQ(train.class_counts(), (Counts{26786, 33828}));
  EXPECT_EQ(train.examples[0].text, "when are bears bears and ");  // trailing space kept
  EXPECT_EQ(train.examples[0].label, 1);

  TextReadOptions o;
  o.classes = train.classes;
  TextSet dev = read_text_set(dev_path, o);
  EXPECT_EQ(dev.examples.size(), 6735u);
  EXPECT_EQ(dev.class_counts(), (Counts{2994, 3741}));
  // By index: the header is recognised because "label" is not a class.
  TextReadOptions by_index = columns("0", "1");
  by_index.classes = train.classes;
  TextSet test = read_text_set(test_path, by_index);
  EXPECT_EQ(test.header, (std::vector<std::string>{"sentence", "label"}));
  EXPECT_EQ(test.examples.size(), 872u);
  EXPECT_EQ(test.class_counts(), (Counts{428, 444}));
  // ... and without fixed classes because "label" is on no other line.
  EXPECT_EQ(read_text_set(test_path, columns("0", "1")).examples.size(), 872u);
}

TEST(TextDataShared, MrPolarityFolderOfClassFiles) {
  REQUIRE_DATA(dir, "mr_polarity");
  // rt-polarity.pos / rt-polarity.neg: one sentence per line, class = extension.
  TextSet s = read_text_set(dir);
  EXPECT_EQ(s.format, "folder");
  EXPECT_EQ(s.classes, (std::vector<std::string>{"neg", "pos"}));  // neg = 0, pos = 1 as in PROVENANCE
  EXPECT_EQ(s.examples.size(), 10662u);
  EXPECT_EQ(s.class_counts(), (Counts{5331, 5331}));
  EXPECT_EQ(s.skipped_empty, 0);
  EXPECT_EQ(s.examples[5331].line, 1);
  EXPECT_EQ(s.examples[5331].text.rfind("the rock is destined to be the 21st century", 0), 0u);
}

TEST(TextDataShared, ChineseSentimentCsv) {
  REQUIRE_DATA(waimai, "chinese_sentiment/waimai_10k.csv");
  REQUIRE_DATA(hotel, "chinese_sentiment/ChnSentiCorp_htl_all.csv");
  TextSet w = read_text_set(waimai);
  EXPECT_EQ(w.format, "csv");
  EXPECT_EQ(w.text_column, "review");
  EXPECT_EQ(w.examples.size(), 11987u);
  EXPECT_EQ(w.class_counts(), (Counts{7987, 4000}));

  // 7,766 rows, but the review on line 6376 (label 0) is empty: skipped and counted.
  TextSet h = read_text_set(hotel);
  EXPECT_EQ(h.examples.size(), 7765u);
  EXPECT_EQ(h.skipped_empty, 1);
  EXPECT_EQ(h.class_counts(), (Counts{2444 - 1, 5322}));
  // Line 2 is a quoted field holding commas and "" escapes.
  EXPECT_EQ(h.examples[0].text,
            "距离川沙公路较近,但是公交指示不对,如果是\"蔡陆线\"的话,会非常麻烦.建议用别的路线.房间较为简单.");
  TextReadOptions strict;
  strict.strict = true;
  std::string err = error_of([&] { read_text_set(hotel, strict); });
  EXPECT_NE(err.find("line 6376: empty text"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------
// CSV, TSV and JSON Lines parsing.

TEST(TextData, CsvQuotingPerRfc4180) {
  const std::string csv =
      "text,label\r\n"
      "\"hello, world\",a\r\n"
      "\"she said \"\"hi\"\"\",b\r\n"
      "\"two\nlines\",a\r\n"
      "plain \"inner\" quote,b\r\n"
      "\"\",a\r\n"
      "last,b";  // no final line break
  TextSet s = parse_text_set(csv, "x.csv");
  ASSERT_EQ(s.examples.size(), 5u);
  EXPECT_EQ(s.skipped_empty, 1);
  EXPECT_EQ(s.examples[0].text, "hello, world");
  EXPECT_EQ(s.examples[1].text, "she said \"hi\"");
  EXPECT_EQ(s.examples[2].text, "two\nlines");
  EXPECT_EQ(s.examples[3].text, "plain \"inner\" quote");
  EXPECT_EQ(s.examples[3].line, 6);  // the quoted line break counts
  EXPECT_EQ(s.examples[4].text, "last");
  EXPECT_EQ(s.examples[4].line, 8);
  EXPECT_EQ(parse_text_set(csv + "\r\n", "x.csv").examples.back().text, "last");
}

TEST(TextData, TsvIsLiteralUnlessQuotingAsked) {
  const std::string tsv = "sentence\tlabel\n\"quoted\" start\tpos\n\"a\tb\"\tneg\n";
  std::string err = error_of([&] { parse_text_set(tsv, "x.tsv"); });
  EXPECT_NE(err.find("x.tsv line 3: 3 fields, expected 2 as on line 1"), std::string::npos) << err;
  TextSet lit = parse_text_set("sentence\tlabel\n\"quoted\" start\tpos\n", "x.tsv");
  EXPECT_EQ(lit.examples[0].text, "\"quoted\" start");
  TextReadOptions q;
  q.tsv_quoting = true;
  TextSet quoted = parse_text_set("sentence\tlabel\n\"a\tb\"\tneg\n\"x\"\"y\"\tpos\n", "x.tsv", q);
  EXPECT_EQ(quoted.examples[0].text, "a\tb");
  EXPECT_EQ(quoted.examples[1].text, "x\"y");
}

TEST(TextData, JsonLines) {
  const std::string jl =
      "{\"sentence1\": \"a man\", \"sentence2\": \"a person\", \"label\": 0}\n"
      "\n"
      "{\"sentence1\": \"cats\", \"sentence2\": \"dogs\", \"label\": 2, \"idx\": 7}\r\n"
      "{\"sentence1\": null, \"sentence2\": \"x\", \"label\": 1}\n"
      "{\"sentence1\": \"q\", \"sentence2\": \"  \", \"label\": 1}\n"
      "{\"sentence1\": \"r\", \"sentence2\": \"s\", \"label\": 1}\n";
  TextSet s = parse_text_set(jl, "pairs.jsonl");
  EXPECT_EQ(s.format, "jsonl");
  EXPECT_TRUE(s.has_pairs);
  EXPECT_EQ(s.text_column, "sentence1");
  EXPECT_EQ(s.text_b_column, "sentence2");
  EXPECT_EQ(s.classes, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(s.examples.size(), 3u);
  EXPECT_EQ(s.skipped_empty, 2);
  EXPECT_EQ(s.skipped_blank_lines, 1);
  EXPECT_EQ(s.examples[1].text, "cats");
  EXPECT_EQ(s.examples[1].text_b, "dogs");
  EXPECT_EQ(s.examples[1].line, 3);
  EXPECT_EQ(s.class_counts(), (Counts{1, 1, 1}));

  TextSet b = parse_text_set("{\"t\":\"x\",\"y\":true}\n{\"t\":\"z\",\"y\":false}\n", "b.json",
                             columns("t", "y"));
  EXPECT_EQ(b.classes, (std::vector<std::string>{"false", "true"}));

  expect_refused({
      {jl, "p.jsonl", columns("0", "2"), "JSON Lines columns are keys"},
      {"{\"text\":\"a\",\"label\":1}\n{\"text\": \"b\",", "m.jsonl", {}, "m.jsonl line 2: malformed JSON"},
      {"{\"text\":\"a\",\"label\":1}\n{\"txt\":\"b\",\"label\":1}\n", "k.jsonl", {},
       "k.jsonl line 2: no text key 'text'; the keys are ['label', 'txt']"},
      {"[{\"text\":\"a\",\"label\":1}]\n", "arr.json", {}, "a JSON array; expected one JSON object per line"},
      {"{\"text\":\"a\",\"label\":1.5}\n", "f.jsonl", {}, "non-integer number"},
      {"{\"text\":3,\"label\":1}\n", "n.jsonl", {}, "text 'text' is a JSON number; expected a string"},
  });
}

// Texts without labels (graft train --unlabeled, issue 19): one per line,
// or the text column of a table (a label column there is ignored).
TEST(TextData, UnlabelledTexts) {
  TextReadOptions u;
  u.unlabeled = true;
  auto texts = [](const TextSet& s) {
    std::vector<std::string> t;
    for (const auto& e : s.examples) {
      EXPECT_EQ(e.label, -1);
      t.push_back(e.text);
    }
    return t;
  };
  using Texts = std::vector<std::string>;
  // A plain file: each line a text, commas and tabs included; blank lines skipped.
  TextSet lines = parse_text_set("first, with a comma\n\n  \nsecond\tand a tab\r\nthird\n", "target.txt", u);
  EXPECT_EQ(lines.format, "lines");
  EXPECT_TRUE(lines.classes.empty());
  EXPECT_EQ(texts(lines), (Texts{"first, with a comma", "second\tand a tab", "third"}));
  EXPECT_EQ(lines.examples[2].line, 5);
  EXPECT_EQ(lines.skipped_blank_lines, 2);
  // A labelled CSV read without its labels.
  TextSet csv = parse_text_set("label,review\npos,\"good, really\"\nneg,bad\n", "t.csv", u);
  EXPECT_EQ(texts(csv), (Texts{"good, really", "bad"}));
  EXPECT_EQ(csv.text_column, "review");
  EXPECT_TRUE(csv.label_column.empty());
  // JSON Lines without a label key; a TSV without header, its text column by index.
  EXPECT_EQ(texts(parse_text_set("{\"sentence\": \"a\"}\n{\"sentence\": \"b\", \"idx\": 2}\n", "t.jsonl", u)),
            (Texts{"a", "b"}));
  TextReadOptions by_index = u;
  by_index.text_column = "1";
  EXPECT_EQ(texts(parse_text_set("7\tfirst text\n8\tsecond text\n", "t.tsv", by_index)),
            (Texts{"first text", "second text"}));
  expect_refused({
      {"id,score\n1,2\n", "n.csv", u, "n.csv: no text column given and none of the usual names"},
      {"\n \n", "blank.txt", u, "blank.txt: no examples (0 records"},
      {"{\"id\": 1}\n", "k.jsonl", u, "k.jsonl line 1: no text column given"},
  });
}

// ---------------------------------------------------------------------------
// Header and column rules.

TEST(TextData, HeaderRules) {
  const std::string body = "good film,pos\nbad film,neg\nfine,pos\n";
  // Indices and no header: "pos" on line 1 is a label again on line 3.
  TextSet no_header = parse_text_set(body, "a.csv", columns("0", "1"));
  EXPECT_TRUE(no_header.header.empty());
  EXPECT_EQ(no_header.examples.size(), 3u);
  // Indices and a header: "polarity" is on no other line.
  TextSet with_header = parse_text_set("review,polarity\n" + body, "a.csv", columns("0", "1"));
  EXPECT_EQ(with_header.header, (std::vector<std::string>{"review", "polarity"}));
  EXPECT_EQ(with_header.text_column, "review");
  EXPECT_EQ(with_header.examples.size(), 3u);
  // Fixed classes decide alone: a first line whose label is a class is data.
  TextReadOptions fixed = columns("0", "1");
  fixed.classes = {"neg", "pos", "zzz"};
  EXPECT_TRUE(parse_text_set("only one,zzz\nx,pos\n", "v.csv", fixed).header.empty());
  // header=no / yes override.
  TextReadOptions forced = columns("0", "1");
  forced.header = "no";
  EXPECT_EQ(parse_text_set("review,polarity\n" + body, "a.csv", forced).classes.size(), 3u);
  forced.header = "yes";
  EXPECT_EQ(parse_text_set(body, "a.csv", forced).examples.size(), 2u);
  // Names: header required, exact or the single case-insensitive match.
  EXPECT_EQ(parse_text_set("Review,Polarity\n" + body, "a.csv", columns("review", "POLARITY"))
                .examples.size(),
            3u);
  // Defaults: Hugging Face names, case-insensitively.
  TextSet d = parse_text_set("id,Text,Label\n1,hi,x\n2,yo,y\n", "d.csv");
  EXPECT_EQ(d.text_column, "Text");
  EXPECT_EQ(d.label_column, "Label");
  // A second text by name.
  TextReadOptions pair = columns("q", "label");
  pair.text_b_column = "a";
  TextSet p = parse_text_set("q,a,label\nwho,me,1\n", "p.csv", pair);
  EXPECT_TRUE(p.has_pairs);
  EXPECT_EQ(p.examples[0].text_b, "me");
}

TEST(TextData, ColumnErrorsListWhatThereIs) {
  const std::string csv = "review,polarity\ngood,pos\n";
  TextReadOptions bad_header = columns("0", "1");
  bad_header.header = "maybe";
  expect_refused({
      {csv, "a.csv", columns("text", "polarity"),
       "a.csv: no text column 'text'; the columns on line 1 are ['review', 'polarity']"},
      // "review" is a text name, "polarity" no label name.
      {csv, "a.csv", {}, "a.csv: no label column given and none of the usual names"},
      {csv, "a.csv", {}, "['review', 'polarity']"},
      {"body,label\nx,y\n", "b.csv", {}, "b.csv: no text column given and none of the usual names"},
      {csv, "a.csv", columns("0", "5"), "label column 5 does not exist: line 1 has 2 fields"},
      {csv, "a.csv", columns("0", "0"), "the text and the label are the same column"},
      {"a,b\nc,d,e\n", "w.csv", columns("0", "1"), "w.csv line 2: 3 fields, expected 2 as on line 1"},
      {csv, "a.csv", bad_header, "auto, yes or no"},
  });
}

// ---------------------------------------------------------------------------
// Bad input.

TEST(TextData, BadInputErrors) {
  TextReadOptions val;
  val.classes = {"neg", "pos"};
  expect_refused({
      {"text,label\nok,a\nbad \xC3\x28,b\n", "u.csv", {},
       "u.csv: invalid UTF-8 at byte offset 20 (line 3, byte 0xC3)"},
      {"text,label\n\"never closed,a\nnext,b\n", "q.csv", {},
       "q.csv line 2: the quoted field that opens at column 1 is never closed"},
      {"text,label\n\"closed\"junk,a\n", "j.csv", {}, "j.csv line 2 column 9: 'j' after a closing quote"},
      {"text,label\nfine,pos\nodd,neutral\n", "val.csv", val,
       "val.csv: label 'neutral' on line 3 is not among the training classes ['neg', 'pos']"},
      {"text,label\nfine,\n", "e.csv", {}, "e.csv line 2: empty label"},
      {"text,label\n \t,a\n", "x.csv", {}, "x.csv: no examples"},
      {"", "empty.csv", {}, "empty.csv: no records"},
      {"just words\n", "plain.txt", {}, "cannot tell whether it is CSV, TSV or JSON Lines"},
      {"text,label\n", "h.csv", {}, "only a header line"},
  });
}

TEST(TextData, EmptyTextsSkippedAndCountedOrStrict) {
  // U+3000 (ideographic space) and U+00A0 are white space too.
  const std::string csv = "text,label\n,a\n\xE3\x80\x80\xC2\xA0,b\nreal,a\n\nmore,b\n";
  TextSet s = parse_text_set(csv, "s.csv");
  EXPECT_EQ(s.examples.size(), 2u);
  EXPECT_EQ(s.skipped_empty, 2);
  EXPECT_EQ(s.skipped_blank_lines, 1);
  EXPECT_EQ(s.classes, (std::vector<std::string>{"a", "b"}));  // classes of skipped rows still count
  TextReadOptions strict;
  strict.strict = true;
  EXPECT_NE(error_of([&] { parse_text_set(csv, "s.csv", strict); }).find("s.csv line 2: empty text"),
            std::string::npos);
}

TEST(TextData, ClassesSortAsStringsAndLabelsAreTrimmed) {
  TextSet s = parse_text_set("text,label\na,9\nb, 10 \nc,2\n", "n.csv");
  EXPECT_EQ(s.classes, (std::vector<std::string>{"10", "2", "9"}));
  EXPECT_EQ(s.examples[1].label, 0);
}

TEST(TextData, FormatByExtensionOrContent) {
  EXPECT_EQ(parse_text_set("text\tlabel\na\tb\n", "data").format, "tsv");
  EXPECT_EQ(parse_text_set("text,label\na,b\n", "data.txt").format, "csv");
  EXPECT_EQ(parse_text_set("{\"text\":\"a\",\"label\":\"b\"}\n", "data").format, "jsonl");
  // The extension wins over the content, and a BOM is skipped.
  TextSet bom = parse_text_set("\xEF\xBB\xBFtext,label\na\tb,c\n", "x.csv");
  EXPECT_EQ(bom.header[0], "text");
  EXPECT_EQ(bom.examples[0].text, "a\tb");
  TextReadOptions o;
  o.format = "xml";
  EXPECT_NE(error_of([&] { parse_text_set("a,b\n", "x", o); }).find("not 'xml'"), std::string::npos);
}

TEST(TextData, FolderOfClassFiles) {
  TempDir dir;
  write_bytes(dir / "pos.txt", "great\r\nlovely\n\n");
  write_bytes(dir / "neg.txt", "awful\n   \nbad");
  write_bytes(dir / ".hidden", "ignored\n");
  TextSet s = read_text_set(dir.path());
  EXPECT_EQ(s.format, "folder");
  EXPECT_EQ(s.classes, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(s.class_counts(), (Counts{2, 2}));
  EXPECT_EQ(s.skipped_empty, 2);
  EXPECT_EQ(s.examples[2].text, "great");  // CRLF stripped
  EXPECT_EQ(s.examples[1].line, 3);

  TextReadOptions fixed;
  fixed.classes = {"pos"};
  EXPECT_NE(error_of([&] { read_text_set(dir.path(), fixed); }).find("label 'neg' on line 1 is not among"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_text_set(dir.path(), columns("0", "1")); }).find("does not apply"),
            std::string::npos);
  write_bytes(dir / "bad.txt", "caf\xE9\n");
  std::string err = error_of([&] { read_text_set(dir.path()); });
  EXPECT_NE(err.find("bad.txt: invalid UTF-8 at byte offset 3 (line 1, byte 0xE9)"), std::string::npos)
      << err;
  fs::remove(dir / "bad.txt");
  fs::create_directory(dir / "sub");
  EXPECT_NE(error_of([&] { read_text_set(dir.path()); }).find("holds the folder 'sub'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_text_set(dir / "missing.csv"); }).find("missing.csv"),
            std::string::npos);
}

// The seeds of fuzz/text_data_fuzz.cpp are valid sets: the fuzz replay starts
// from inputs that reach the end of the reader, not only its errors.
TEST(TextData, FuzzSeedsParse) {
  const fs::path dir = fs::path(GRAFT_SOURCE_DIR) / "fuzz" / "corpus" / "text_data_fuzz";
  int seen = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = e.path().filename().string();
    TextReadOptions o = name == "no_header.tsv" ? columns("0", "1") : TextReadOptions{};
    TextSet s = parse_text_set(bytes, name, o);
    EXPECT_FALSE(s.examples.empty()) << name;
    ++seen;
  }
  EXPECT_GE(seen, 3);
}

}  // namespace
}  // namespace graft
