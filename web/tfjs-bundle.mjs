// The page's one TensorFlow.js: core, the graph-model loader and three backends, bundled by
// `npm run vendor` into vendor/tfjs.esm.js (esbuild, one minified ES module).
export * from '@tensorflow/tfjs-core';
export { loadGraphModel, GraphModel } from '@tensorflow/tfjs-converter';
export { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// tensor.slice(), .toFloat() ...: the full tfjs package registers these; core alone does not.
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-cpu';
