// The FER+ expression classifier: our tfjs graph model plus its meta.json.
import { tf } from './tf.js';
import { cropFaces } from './crop.js';
import { loadKernels4Model } from './kernels4.js';

export class ExpressionClassifier {
  static async load(baseUrl = 'model/') {
    const meta = await fetch(new URL('meta.json', new URL(baseUrl, location.href))).then((r) => {
      if (!r.ok) throw new Error(`model metadata: HTTP ${r.status}`);
      return r.json();
    });
    const modelUrl = new URL('model.json', new URL(baseUrl, location.href));
    // A bundle with 4-bit kernels needs our loader; tfjs reads every other one itself.
    const model = await (meta.quantization === 'kernels4' ? loadKernels4Model(modelUrl) : tf.loadGraphModel(modelUrl.href));
    const c = new ExpressionClassifier(model, meta);
    const blank = tf.zeros([64, 64, 3]);
    c.classify(blank, [{ x: 0, y: 0, width: 64, height: 64 }]); // compile the kernels before the first frame
    blank.dispose();
    return c;
  }

  constructor(model, meta) {
    this.model = model;
    this.meta = meta;
    this.classes = meta.classes;
    this.margin = meta.crop_margin ?? 0.1;
  }

  // pixels: [h, w, 3|4] tensor (or anything tf.browser.fromPixels takes); boxes in its pixels.
  // One batch for all faces. Returns one probability array (FER+ order) per box.
  classify(pixels, boxes) {
    if (!boxes.length) return [];
    const probs = tf.tidy(() => {
      const rgb = pixels instanceof tf.Tensor ? pixels : tf.browser.fromPixels(pixels);
      return this.model.predict(cropFaces(rgb, boxes, this.margin));
    });
    const rows = probs.arraySync();
    probs.dispose();
    return rows;
  }

  // The exact 48x48 inputs the model sees, for tests and debugging.
  crops(pixels, boxes) {
    return tf.tidy(() => cropFaces(tf.browser.fromPixels(pixels), boxes, this.margin).arraySync());
  }
}
