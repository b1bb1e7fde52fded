// Runs an ONNX model with onnxruntime-node (CPU execution provider), the
// reference runtime of graft's ONNX export (scripts/onnx_reference.sh fetches
// it; ONNXRUNTIME_NODE_MODULES overrides where its node_modules folder is).
//
//   node onnx_run.js MODEL SPEC.json OUTDIR [--repeat N] [--threads T]
//
// SPEC.json: {"inputs": [{"name": "input", "type": "float32" | "int64",
//             "dims": [2, 3, 32, 32], "file": "x.bin"}]}, each file the raw
// little-endian values. Writes OUTDIR/NAME.bin (float32) for each output and
// OUTDIR/outputs.json: {"outputs": {NAME: {"dims": [...]}}, "metadata": {...},
// "ms_per_run": mean time of one run over --repeat runs after one warm-up}.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function fail(message) {
  process.stderr.write(`onnx_run: ${message}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
let repeat = 0;
let threads = 0;
const positional = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === '--repeat') repeat = Number(args[++i]);
  else if (args[i] === '--threads') threads = Number(args[++i]);
  else positional.push(args[i]);
}
if (positional.length !== 3) fail('usage: node onnx_run.js MODEL SPEC.json OUTDIR [--repeat N] [--threads T]');
const [modelPath, specPath, outDir] = positional;
const modules = process.env.ONNXRUNTIME_NODE_MODULES ||
    path.join(process.env.GRAFT_CACHE_DIR || path.join(os.homedir(), '.cache', 'graft'),
              'onnxruntime-1.20.1', 'node_modules');
let ort;
try {
  ort = require(path.join(modules, 'onnxruntime-node'));
} catch (e) {
  fail(`onnxruntime-node not found in ${modules} (scripts/onnx_reference.sh): ${e.message}`);
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const options = {executionProviders: ['cpu'], graphOptimizationLevel: 'all'};
  if (threads > 0) {
    options.intraOpNumThreads = threads;
    options.interOpNumThreads = 1;
  }
  const session = await ort.InferenceSession.create(modelPath, options);
  const feeds = {};
  for (const input of spec.inputs) {
    const bytes = fs.readFileSync(input.file);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    let data;
    if (input.type === 'float32') data = new Float32Array(buffer);
    else if (input.type === 'int64') data = new BigInt64Array(buffer);
    else fail(`input ${input.name}: type ${input.type} (expected float32 or int64)`);
    feeds[input.name] = new ort.Tensor(input.type, data, input.dims);
  }
  let results = await session.run(feeds);
  let ms = 0;
  if (repeat > 0) {
    const start = process.hrtime.bigint();
    for (let r = 0; r < repeat; ++r) results = await session.run(feeds);
    ms = Number(process.hrtime.bigint() - start) / 1e6 / repeat;
  }
  fs.mkdirSync(outDir, {recursive: true});
  const outputs = {};
  for (const name of session.outputNames) {
    const t = results[name];
    if (t.type !== 'float32') fail(`output ${name}: type ${t.type} (expected float32)`);
    fs.writeFileSync(path.join(outDir, `${name}.bin`), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    outputs[name] = {dims: t.dims};
  }
  fs.writeFileSync(path.join(outDir, 'outputs.json'), JSON.stringify({outputs, ms_per_run: ms}));
}

main().catch((e) => fail(e.message));
