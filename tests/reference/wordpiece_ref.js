#!/usr/bin/env node
// The reference BERT tokenizer for graft's WordPiece parity test, run with node.
//
//   node wordpiece_ref.js --packages DIR [--impl rust|js] IN OUT
//   node wordpiece_ref.js --packages DIR [--impl rust|js] --bench TEXT_FILE VOCAB [REPEATS]
//
// DIR is the folder scripts/text_reference.sh prints. --impl rust (default)
// uses npm "tokenizers", Hugging Face's Rust tokenizers as a Node addon, the
// engine of transformers' BertTokenizerFast; --impl js uses
// "@huggingface/tokenizers", the pure JavaScript port of transformers.js.
// Neither shares code with graft.
//
// IN is JSON: {"vocab": PATH, "lower_case": true, "texts": [...],
//              "pairs": [{"a": ..., "b": ..., "max_length": N}, ...]}
// or a .txt file with one text per line (then --vocab PATH is needed).
// OUT gets JSON: {"reference": "tokenizers@0.23.2", "ids": [[...], ...],
//                 "pairs": [{"input_ids", "token_type_ids", "attention_mask"}, ...]}
// "ids" are the token ids of each text without [CLS]/[SEP]. Pairs are encoded
// as [CLS] A [SEP] B [SEP] with truncation 'longest_first' to max_length
// (rust only; the js port has no truncation).
//
// The tokenizer is described by the tokenizer.json that Hugging Face's
// BertTokenizerFast saves for a BERT vocab.txt (BertNormalizer,
// BertPreTokenizer, WordPiece with "##" and max_input_chars_per_word 100,
// [CLS]/[SEP] template, the five special tokens as added tokens), built
// here from the vocab so that nothing is downloaded.
'use strict';

const fs = require('fs');
const path = require('path');

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

function usage(msg) {
  process.stderr.write(`wordpiece_ref: ${msg}\n`);
  process.exit(2);
}

function readVocab(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const vocab = {};
  lines.forEach((t, i) => { vocab[t.replace(/\r$/, '')] = i; });
  for (const s of SPECIALS) if (!(s in vocab)) usage(`${file} has no ${s}`);
  return vocab;
}

function tokenizerJson(vocab, lowerCase) {
  const special = (id) => ({ SpecialToken: { id, type_id: 0 } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((s) => ({
      id: vocab[s], content: s, single_word: false, lstrip: false, rstrip: false,
      normalized: false, special: true,
    })).sort((a, b) => a.id - b.id),
    normalizer: {
      type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true,
      strip_accents: null, lowercase: lowerCase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]')],
      pair: [special('[CLS]'), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]'),
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##',
      max_input_chars_per_word: 100, vocab,
    },
  };
}

// A uniform interface over the two packages: ids(text), pair(a, b, maxLength).
function load(impl, packages, vocab, lowerCase) {
  const tj = tokenizerJson(vocab, lowerCase);
  if (impl === 'rust') {
    const dir = path.join(packages, 'tokenizers-0.23.2');
    const { Tokenizer } = require(dir);
    const tok = Tokenizer.fromString(JSON.stringify(tj));
    const name = `tokenizers@${require(path.join(dir, 'package.json')).version}`;
    return {
      name,
      async ids(text) {
        return (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
      },
      async idsBatch(texts) {
        const encs = await tok.encodeBatch(texts, { addSpecialTokens: false });
        return encs.map((e) => e.getIds());
      },
      async pair(a, b, maxLength) {
        if (maxLength) tok.setTruncation(maxLength, { strategy: 'LongestFirst' });
        else tok.disableTruncation();
        const e = await tok.encode(a, b);
        return { input_ids: e.getIds(), token_type_ids: e.getTypeIds(), attention_mask: e.getAttentionMask() };
      },
    };
  }
  if (impl === 'js') {
    const dir = path.join(packages, 'huggingface-tokenizers-0.2.0');
    const { Tokenizer } = require(path.join(dir, 'dist', 'tokenizers.cjs'));
    const tok = new Tokenizer(tj, { do_lower_case: lowerCase, model_max_length: 1e9 });
    const name = `@huggingface/tokenizers@${require(path.join(dir, 'package.json')).version}`;
    return {
      name,
      async ids(text) { return tok.encode(text, { add_special_tokens: false }).ids; },
      async idsBatch(texts) { return texts.map((t) => tok.encode(t, { add_special_tokens: false }).ids); },
      async pair() { return null; },
    };
  }
  return usage(`--impl must be rust or js, not ${impl}`);
}

async function bench(ref, textFile, repeats) {
  const lines = fs.readFileSync(textFile, 'utf8').split('\n');
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < repeats; ++r) {
    for (const line of lines) tokens += (await ref.ids(line)).length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  // encodeBatch: the way the Rust engine is meant to be used (parallel over texts).
  const t1 = process.hrtime.bigint();
  let batchTokens = 0;
  for (let r = 0; r < repeats; ++r) {
    for (const ids of await ref.idsBatch(lines)) batchTokens += ids.length;
  }
  const sb = Number(process.hrtime.bigint() - t1) / 1e9;
  const bytes = Buffer.byteLength(lines.join('\n')) * repeats;
  process.stdout.write(JSON.stringify({
    reference: ref.name, lines: lines.length * repeats, bytes, tokens,
    seconds: s, tokens_per_second: tokens / s,
    batch_seconds: sb, batch_tokens_per_second: batchTokens / sb,
  }) + '\n');
}

async function main() {
  const args = process.argv.slice(2);
  let impl = 'rust';
  let packages = null;
  let vocabPath = null;
  let benchMode = false;
  const rest = [];
  for (let i = 0; i < args.length; ++i) {
    if (args[i] === '--impl') impl = args[++i];
    else if (args[i] === '--packages') packages = args[++i];
    else if (args[i] === '--vocab') vocabPath = args[++i];
    else if (args[i] === '--bench') benchMode = true;
    else rest.push(args[i]);
  }
  if (!packages) usage('--packages DIR is required (the folder scripts/text_reference.sh prints)');
  if (benchMode) {
    if (rest.length < 2) usage('--bench TEXT_FILE VOCAB [REPEATS]');
    const ref = load(impl, packages, readVocab(rest[1]), true);
    return bench(ref, rest[0], Number(rest[2] || 1));
  }
  if (rest.length !== 2) usage('expected IN and OUT');
  const [inFile, outFile] = rest;
  let input;
  if (inFile.endsWith('.txt')) {
    if (!vocabPath) usage('--vocab PATH is needed with a .txt input');
    input = { vocab: vocabPath, texts: fs.readFileSync(inFile, 'utf8').split('\n') };
    if (input.texts.length && input.texts[input.texts.length - 1] === '') input.texts.pop();
  } else {
    input = JSON.parse(fs.readFileSync(inFile, 'utf8'));
  }
  const lowerCase = input.lower_case !== undefined ? Boolean(input.lower_case) : true;
  const ref = load(impl, packages, readVocab(vocabPath || input.vocab), lowerCase);
  const out = { reference: ref.name, ids: [], pairs: [] };
  for (const text of input.texts || []) out.ids.push(await ref.ids(text));
  for (const p of input.pairs || []) out.pairs.push(await ref.pair(p.a, p.b, p.max_length || 0));
  fs.writeFileSync(outFile, JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(`wordpiece_ref: ${e.stack || e}\n`);
  process.exit(1);
});
