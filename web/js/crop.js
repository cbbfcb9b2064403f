// Face box -> 48x48 gray model input: the page's twin of ferlive/crop.py.
// tests/test_browser.py holds the two to the same numbers on the same image.
import { tf } from './tf.js';

export const INPUT_SIZE = 48;
const SUPERSAMPLE = 4; // sample 4x finer, then average 4x4 blocks: a cheap anti-aliased downscale

// (x, y, w, h) -> square about the centre, grown by margin, kept inside the image.
export function squareBox({ x, y, width, height }, imageWidth, imageHeight, margin) {
  const side = Math.min(Math.max(width, height) * (1 + margin), imageWidth, imageHeight);
  const left = Math.min(Math.max(x + width / 2 - side / 2, 0), imageWidth - side);
  const top = Math.min(Math.max(y + height / 2 - side / 2, 0), imageHeight - side);
  return { left, top, side };
}

// ITU-R 601 luma of an RGB(A) pixel tensor [h, w, 3|4] -> [1, h, w, 1] float32.
export function toGray(rgb) {
  return tf.tidy(() => {
    const [r, g, b] = tf.split(rgb.slice([0, 0, 0], [-1, -1, 3]).toFloat(), 3, 2);
    return r.mul(0.299).add(g.mul(0.587)).add(b.mul(0.114)).expandDims(0);
  });
}

// gray [1, h, w, 1], boxes in its pixels -> [n, 48, 48, 1] float32 values 0-255.
export function cropFaces(gray, boxes, margin) {
  const [, h, w] = gray.shape;
  const coords = boxes.map((box) => {
    const { left, top, side } = squareBox(box, w, h, margin);
    // cropAndResize spans from the first to the last sampled pixel, in [0, 1] units of (size - 1).
    return [top / (h - 1), left / (w - 1), (top + side - 1) / (h - 1), (left + side - 1) / (w - 1)];
  });
  return tf.tidy(() => {
    const n = INPUT_SIZE * SUPERSAMPLE;
    const fine = tf.image.cropAndResize(gray, tf.tensor2d(coords, [coords.length, 4]),
      tf.zeros([coords.length], 'int32'), [n, n], 'bilinear');
    return tf.avgPool(fine, SUPERSAMPLE, SUPERSAMPLE, 'valid');
  });
}
