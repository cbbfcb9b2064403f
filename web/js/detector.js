// Face detection in the page: MediaPipe's BlazeFace (full range), the same weight files and
// the same looks at the image as the API's detector (ferlive/detector.py).
import { tf } from './tf.js';
import * as bf from './blazeface.js';

const MODEL = new URL('../vendor/blazeface/facemesh-detection-full.json', import.meta.url).href;
const FACE_OUTPUT = 'Identity:0'; // the other head (Identity_1) finds people, not faces

export class FaceDetector {
  static async load() {
    const net = await tf.loadGraphModel(MODEL);
    const detector = new FaceDetector(net);
    const blank = tf.zeros([bf.INPUT_SIZE, bf.INPUT_SIZE, 3]);
    await detector.detect(blank); // compile the kernels before the first frame
    blank.dispose();
    return detector;
  }

  constructor(net) {
    this.net = net;
  }

  // [{ name, region }] -> { boxes (image pixels), scores, names }, all regions in one batch.
  async look(image, looks) {
    const [height, width] = image.shape.slice(1, 3);
    const raw = tf.tidy(() => {
      const batch = tf.image.cropAndResize(image, cropTensor(looks, width, height),
        tf.zeros([looks.length], 'int32'), [bf.INPUT_SIZE, bf.INPUT_SIZE], 'bilinear', 0);
      return this.net.execute(batch.div(127.5).sub(1), FACE_OUTPUT);
    });
    const data = await raw.data();
    raw.dispose();
    const out = { boxes: [], scores: [], names: [] };
    const per = data.length / looks.length;
    looks.forEach(({ name, region }, i) => {
      const found = bf.weightedNms(bf.decode(data.subarray(i * per, (i + 1) * per)));
      out.boxes.push(...bf.toImage(found.boxes, region));
      out.scores.push(...found.scores);
      out.names.push(...found.scores.map(() => name));
    });
    return out;
  }

  // input: [h, w, 3|4] tensor, or anything tf.browser.fromPixels takes. tiles: also look at a
  // large photo in overlapping tiles (small faces in group shots); the live camera skips them.
  // -> [{ x, y, width, height, score, foundBy }] in the input's own pixels, largest first.
  async detect(input, { tiles = false } = {}) {
    const image = tf.tidy(() => {
      const pixels = input instanceof tf.Tensor ? input : tf.browser.fromPixels(input);
      return pixels.slice([0, 0, 0], [-1, -1, 3]).toFloat().expandDims(0);
    });
    try {
      const [, height, width] = image.shape;
      if (Math.min(width, height) < bf.MIN_IMAGE_SIDE) return [];
      let looks = [{ name: 'photo', region: bf.letterbox(width, height) }];
      if (tiles) looks = looks.concat(bf.tiles(width, height).map((region) => ({ name: 'tile', region })));
      let found = await this.look(image, looks);
      if (!found.scores.length) found = await this.look(image, [{ name: 'padded', region: bf.padded(width, height) }]);
      let keep = bf.merge(found.boxes, found.scores);
      // A tile magnifies hands and fabric into faces too; a real face is found again in a close-up.
      const doubtful = keep.filter((i) => found.names[i] === 'tile');
      if (doubtful.length) {
        const close = await this.look(image, doubtful.map((i) => ({ name: i, region: bf.closeUp(found.boxes[i]) })));
        keep = keep.filter((i) => !doubtful.includes(i)
          || bf.confirmed(found.boxes[i], close.boxes.filter((_, j) => close.names[j] === i)));
      }
      return keep
        .map((i) => ({ ...bf.roundBox(found.boxes[i], width, height), score: found.scores[i], foundBy: found.names[i] }))
        .filter((f) => f.width >= 1 && f.height >= 1)
        .sort((a, b) => b.width * b.height - a.width * a.height);
    } finally {
      image.dispose();
    }
  }
}

const cropTensor = (looks, width, height) =>
  tf.tensor2d(bf.cropBoxes(looks.map((l) => l.region), width, height), [looks.length, 4]);
