// Face detection in the page: face-api's detectors, weights served from vendor/.
import { faceapi } from './tf.js';

const MODELS = new URL('../vendor/face-api-models/', import.meta.url).href;

export class FaceDetector {
  // 'tiny' (190 kB, fast enough for live video on phones) or 'ssd' (5.6 MB, finds
  // smaller and turned faces: used for still photos).
  static async load(kind = 'tiny') {
    const net = kind === 'ssd' ? faceapi.nets.ssdMobilenetv1 : faceapi.nets.tinyFaceDetector;
    if (!net.isLoaded) await net.loadFromUri(MODELS);
    return new FaceDetector(kind);
  }

  constructor(kind) {
    this.kind = kind;
    // Tiny at 512 px / 0.4 finds the Hamilton clip's face in 16 of 25 frames, at 416 / 0.5 in 6.
    this.options = kind === 'ssd'
      ? new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 50 })
      : new faceapi.TinyFaceDetectorOptions({ inputSize: 512, scoreThreshold: 0.4 });
  }

  // -> [{ x, y, width, height, score }] in the input's own pixels, largest first.
  async detect(input) {
    const found = await faceapi.detectAllFaces(input, this.options);
    return found
      .map((d) => ({ x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height, score: d.score }))
      .sort((a, b) => b.width * b.height - a.width * a.height);
  }
}
