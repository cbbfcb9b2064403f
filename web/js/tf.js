// One tfjs instance for the whole page (tfjs 4.22.0: core, graph models, WebGL, wasm and
// cpu backends, bundled by `npm run vendor`), shared by the face detector and our model.
import * as tf from '../vendor/tfjs.esm.js';

export { tf };

const isSoftwareGL = () => {
  try {
    const gl = document.createElement('canvas').getContext('webgl2') || document.createElement('canvas').getContext('webgl');
    if (!gl) return true;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return /swiftshader|llvmpipe|software|basic render/i.test(renderer || '');
  } catch { return true; }
};

// The fastest backend that works: WebGL on a real GPU, else wasm (SIMD, and threads when
// the page is cross-origin isolated, which the server's COOP/COEP headers make it).
// ?backend=wasm|webgl|cpu forces one.
export async function pickBackend() {
  const forced = new URLSearchParams(location.search).get('backend');
  // The wasm binaries live in vendor/, beside the bundle.
  tf.setWasmPaths(new URL('../vendor/', import.meta.url).href);
  const order = forced ? [forced] : (isSoftwareGL() ? ['wasm', 'webgl', 'cpu'] : ['webgl', 'wasm', 'cpu']);
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch (e) {
      console.warn(`tfjs backend ${name} failed`, e);
    }
  }
  throw new Error('no TensorFlow.js backend could start in this browser');
}
