// Copies the exact browser files the page loads from node_modules into vendor/, with
// their licences. The result is committed, so a fresh clone runs without npm.
//   cd web && npm ci && npm run vendor
import { cpSync, mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';

const files = {
  // face-api's ESM build bundles tfjs 4.22.0 (core, converter, webgl, wasm backends):
  // one tfjs instance runs both the face detector and our classifier.
  '@vladmandic/face-api/dist/face-api.esm.js': 'face-api.esm.js',
  '@vladmandic/face-api/LICENSE': 'LICENSE.face-api.txt',
  // Detector weights (MIT, shipped in the npm package).
  '@vladmandic/face-api/model/tiny_face_detector_model.bin': 'face-api-models/tiny_face_detector_model.bin',
  '@vladmandic/face-api/model/tiny_face_detector_model-weights_manifest.json': 'face-api-models/tiny_face_detector_model-weights_manifest.json',
  '@vladmandic/face-api/model/ssd_mobilenetv1_model.bin': 'face-api-models/ssd_mobilenetv1_model.bin',
  '@vladmandic/face-api/model/ssd_mobilenetv1_model-weights_manifest.json': 'face-api-models/ssd_mobilenetv1_model-weights_manifest.json',
  // face-api's own expression net, only for the side-by-side benchmark.
  '@vladmandic/face-api/model/face_expression_model.bin': 'face-api-models/face_expression_model.bin',
  '@vladmandic/face-api/model/face_expression_model-weights_manifest.json': 'face-api-models/face_expression_model-weights_manifest.json',
  // Swagger UI for the API docs page (/docs), served from here instead of a CDN.
  'swagger-ui-dist/swagger-ui-bundle.js': 'swagger-ui/swagger-ui-bundle.js',
  'swagger-ui-dist/swagger-ui.css': 'swagger-ui/swagger-ui.css',
  'swagger-ui-dist/favicon-32x32.png': 'swagger-ui/favicon-32x32.png',
  'swagger-ui-dist/LICENSE': 'swagger-ui/LICENSE',
  'swagger-ui-dist/NOTICE': 'swagger-ui/NOTICE',
  // The wasm backend's binaries, same version as the tfjs inside face-api.
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm': 'tfjs-backend-wasm.wasm',
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm': 'tfjs-backend-wasm-simd.wasm',
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm': 'tfjs-backend-wasm-threaded-simd.wasm',
};

rmSync('vendor', { recursive: true, force: true });
mkdirSync('vendor/face-api-models', { recursive: true });
mkdirSync('vendor/swagger-ui', { recursive: true });
const versions = {};
for (const [from, to] of Object.entries(files)) {
  cpSync(`node_modules/${from}`, `vendor/${to}`);
  const pkg = from.split('/').slice(0, from.startsWith('@') ? 2 : 1).join('/');
  versions[pkg] = JSON.parse(readFileSync(`node_modules/${pkg}/package.json`)).version;
}
// The tfjs packages ship no LICENSE file, only the identifier in package.json.
const licences = Object.keys(versions).map((pkg) => {
  const meta = JSON.parse(readFileSync(`node_modules/${pkg}/package.json`));
  return { package: pkg, version: meta.version, license: meta.license };
});
licences.push({ package: '@tensorflow/tfjs (bundled inside face-api.esm.js)', version: '4.22.0', license: 'Apache-2.0' });
writeFileSync('vendor/LICENSES.json', JSON.stringify(licences, null, 2) + '\n');
console.log(`vendored ${Object.keys(files).length} files from`, versions);
