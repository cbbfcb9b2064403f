// BlazeFace (MediaPipe's full-range face detector): where to look, and what its output means.
// The page's twin of ferlive/blazeface.py (same names, same numbers); tests/test_detector.py
// holds the two to the same boxes on the same raw outputs. Boxes here are [x0, y0, x1, y1];
// a region is { left, top, side }, a square in image pixels that may reach past the image.

export const INPUT_SIZE = 192;
const GRID = 48; // 192 / stride 4
export const MIN_SCORE = 0.5;
export const MIN_IMAGE_SIDE = 8;
const NMS_IOU = 0.3;
export const MAX_SIDE = 1600; // photos are shrunk to this first (app.js), as the API does
export const TILE_ABOVE = 1024;
const TILE_FRACTION = 0.6;
const CLOSE_UP = 2.5;
const PAD_FACTOR = 2.0;

// raw: flat Float32Array of 2304 x 17 (logit, then 16 regressors) -> { boxes, scores } in
// [0, 1] of the region, best first, before suppression.
export function decode(raw, minScore = MIN_SCORE) {
  const found = [];
  for (let i = 0; i < GRID * GRID; i += 1) {
    const r = i * 17;
    const score = 1 / (1 + Math.exp(-Math.min(100, Math.max(-100, raw[r]))));
    if (score >= minScore) found.push([i, score]);
  }
  found.sort((a, b) => b[1] - a[1]); // stable, as numpy's argsort(kind="stable")
  const boxes = found.map(([i]) => {
    const r = i * 17;
    const cx = ((i % GRID) + 0.5) / GRID + raw[r + 1] / INPUT_SIZE;
    const cy = (Math.floor(i / GRID) + 0.5) / GRID + raw[r + 2] / INPUT_SIZE;
    const hw = raw[r + 3] / INPUT_SIZE / 2;
    const hh = raw[r + 4] / INPUT_SIZE / 2;
    return [cx - hw, cy - hh, cx + hw, cy + hh];
  });
  return { boxes, scores: found.map(([, s]) => s) };
}

export function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

// MediaPipe's WEIGHTED suppression: each cluster of boxes overlapping the best one becomes
// their score-weighted mean, with the best one's score. Input best first.
export function weightedNms({ boxes, scores }, threshold = NMS_IOU) {
  const out = { boxes: [], scores: [] };
  let rest = boxes.map((box, i) => [box, scores[i]]);
  while (rest.length) {
    const best = rest[0][0];
    const cluster = rest.filter(([box], i) => i === 0 || iou(best, box) > threshold);
    rest = rest.filter(([box], i) => !(i === 0 || iou(best, box) > threshold));
    const total = cluster.reduce((t, [, s]) => t + s, 0);
    out.boxes.push([0, 1, 2, 3].map((k) => cluster.reduce((t, [box, s]) => t + box[k] * s, 0) / total));
    out.scores.push(cluster[0][1]);
  }
  return out;
}

export function letterbox(width, height) {
  const side = Math.max(width, height);
  return { left: (width - side) / 2, top: (height - side) / 2, side };
}

export function tiles(width, height) {
  if (Math.max(width, height) <= TILE_ABOVE) return [];
  const side = Math.round(TILE_FRACTION * Math.max(width, height));
  const starts = (extent) => (extent <= side ? [(extent - side) / 2] : [0, extent - side]);
  return starts(height).flatMap((top) => starts(width).map((left) => ({ left, top, side })));
}

export function padded(width, height) {
  const { left, top, side } = letterbox(width, height);
  const grow = (side * (PAD_FACTOR - 1)) / 2;
  return { left: left - grow, top: top - grow, side: side * PAD_FACTOR };
}

export function closeUp(box) {
  const side = CLOSE_UP * Math.max(box[2] - box[0], box[3] - box[1]);
  return { left: (box[0] + box[2] - side) / 2, top: (box[1] + box[3] - side) / 2, side };
}

export const confirmed = (box, found) => found.some((f) => iou(box, f) > NMS_IOU);

// Regions -> cropAndResize boxes [y0, x0, y1, x1], 0 and 1 being the first and last pixel.
export function cropBoxes(regions, width, height) {
  return regions.map(({ left, top, side }) => [top / (height - 1), left / (width - 1),
    (top + side - 1) / (height - 1), (left + side - 1) / (width - 1)]);
}

export const toImage = (boxes, { left, top, side }) =>
  boxes.map((b) => [b[0] * side + left, b[1] * side + top, b[2] * side + left, b[3] * side + top]);

const centreInside = (a, b) => {
  const cx = (a[0] + a[2]) / 2; const cy = (a[1] + a[3]) / 2;
  return b[0] <= cx && cx <= b[2] && b[1] <= cy && cy <= b[3];
};

// Faces found by several regions -> one box each; returns the indices kept.
export function merge(boxes, scores) {
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]);
  const kept = [];
  for (const i of order) {
    if (!kept.some((k) => iou(boxes[k], boxes[i]) > NMS_IOU || centreInside(boxes[i], boxes[k])
      || centreInside(boxes[k], boxes[i]))) kept.push(i);
  }
  return kept;
}

// [x0, y0, x1, y1] -> { x, y, width, height } clipped to the image.
export function roundBox(box, width, height) {
  const x0 = Math.max(0, box[0]); const y0 = Math.max(0, box[1]);
  const x1 = Math.min(width, box[2]); const y1 = Math.min(height, box[3]);
  return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
}
