#!/usr/bin/env node
// The reference for graft's face parity tests: face-api itself
// (npm @vladmandic/face-api@1.7.15, its dist/face-api.esm.js bundle with
// TensorFlow.js 4.22.0 core and its pure JavaScript CPU backend), run with node.
//
//   node face_ref.mjs --package DIR --models DIR IN OUT
//
// DIR (package) is the folder scripts/face_reference.sh prints; DIR (models)
// holds the *-weights_manifest.json files and shards (scripts/face_models.sh).
// IN is JSON: {"images": [{"name", "file", "height", "width"}, ...]}, each file
// raw 8-bit RGB, row-major HWC, relative to IN's folder. OUT gets JSON:
//   {"reference": "@vladmandic/face-api@1.7.15 tfjs-core@4.22.0 backend cpu",
//    "images": [{"name", "descriptor": [128 floats],
//                "landmarks": [[x, y] x 68],
//                "detections": [{"score", "box": [x, y, width, height]}, ...]}, ...],
//    "min_confidence": 0.2}
// descriptor is faceRecognitionNet.computeFaceDescriptor(image tensor) and
// landmarks faceLandmark68Net.detectLandmarks(image tensor).positions,
// detections ssdMobilenetv1.locateFaces(image tensor, minConfidence 0.2): face-api
// pads the image to a square (centred), resizes it bilinearly to the net's
// input (150 / 112) and, for landmarks, maps them back to image pixels.
//
// The browser bundle is used because it needs no native addon: it is imported
// with process.versions hidden (its node platform wants Node's util module,
// which the bundle stubs out), then given a minimal node platform. Nothing of
// the arithmetic changes.
import fs from 'fs';
import path from 'path';

function parseArgs(argv) {
  const opts = { rest: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--package') opts.pkg = argv[++i];
    else if (argv[i] === '--models') opts.models = argv[++i];
    else opts.rest.push(argv[i]);
  }
  if (!opts.pkg || !opts.models || opts.rest.length !== 2) {
    console.error('usage: face_ref.mjs --package DIR --models DIR IN OUT');
    process.exit(2);
  }
  return opts;
}

async function loadFaceApi(pkg) {
  const realProcess = globalThis.process;
  globalThis.process = { ...realProcess, versions: {}, env: realProcess.env };
  let faceapi;
  try {
    faceapi = await import(path.resolve(pkg, 'dist', 'face-api.esm.js'));
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
  // face-api's own environment: only its instanceof checks on inputs use it
  // (inputs here are tensors), so plain classes stand in for the DOM ones.
  class None {}
  faceapi.env.setEnv({
    Canvas: None, CanvasRenderingContext2D: None, Image: None, ImageData: None, Video: None,
    createCanvasElement: () => { throw new Error('no canvas in the reference'); },
    createImageElement: () => { throw new Error('no image elements in the reference'); },
    createVideoElement: () => { throw new Error('no video in the reference'); },
    fetch: globalThis.fetch,
    readFile: (file) => fs.promises.readFile(file),
  });
  if (!(await tf.setBackend('cpu'))) throw new Error('tfjs cpu backend did not start');
  await tf.ready();
  return faceapi;
}

function loadWeights(tf, modelsDir, name) {
  const manifestPath = path.join(modelsDir, `${name}-weights_manifest.json`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const maps = {};
  for (const group of manifest) {
    const buffers = group.paths.map((p) => fs.readFileSync(path.join(modelsDir, p)));
    const all = Buffer.concat(buffers);
    const data = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
    Object.assign(maps, tf.io.decodeWeights(data, group.weights));
  }
  return maps;
}

// Minified bundle lines make stack traces useless: report the message only.
process.on('uncaughtException', (e) => { console.error(`face_ref: ${e.message}`); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(`face_ref: ${e && e.message}`); process.exit(1); });
const opts = parseArgs(process.argv.slice(2));
const faceapi = await loadFaceApi(opts.pkg);
const { tf } = faceapi;
const recognition = faceapi.nets.faceRecognitionNet;
const landmarkNet = faceapi.nets.faceLandmark68Net;
recognition.loadFromWeightMap(loadWeights(tf, opts.models, 'face_recognition_model'));
landmarkNet.loadFromWeightMap(loadWeights(tf, opts.models, 'face_landmark_68_model'));
const detector = faceapi.nets.ssdMobilenetv1;
detector.loadFromWeightMap(loadWeights(tf, opts.models, 'ssd_mobilenetv1_model'));
const MIN_CONFIDENCE = 0.2;  // lower than face-api's 0.5, to compare more boxes

const [inPath, outPath] = opts.rest;
const input = JSON.parse(fs.readFileSync(inPath, 'utf8'));
const images = [];
for (const image of input.images) {
  const bytes = fs.readFileSync(path.join(path.dirname(inPath), image.file));
  if (bytes.length !== image.height * image.width * 3) {
    throw new Error(`${image.file}: ${bytes.length} bytes, expected ${image.height}x${image.width}x3`);
  }
  const tensor = tf.tensor3d(new Uint8Array(bytes), [image.height, image.width, 3], 'int32');
  const descriptor = await recognition.computeFaceDescriptor(tensor);
  const landmarks = await landmarkNet.detectLandmarks(tensor);
  const detections = await detector.locateFaces(tensor, new faceapi.SsdMobilenetv1Options({ minConfidence: MIN_CONFIDENCE }));
  tensor.dispose();
  images.push({
    name: image.name,
    descriptor: Array.from(descriptor),
    landmarks: landmarks.positions.map((p) => [p.x, p.y]),
    detections: detections.map((d) => ({ score: d.score, box: [d.box.x, d.box.y, d.box.width, d.box.height] })),
  });
}
fs.writeFileSync(outPath, JSON.stringify({
  reference: `@vladmandic/face-api@1.7.15 tfjs-core@${tf.version_core} backend ${tf.getBackend()}`,
  min_confidence: MIN_CONFIDENCE,
  images,
}));
