// Per-face smoothing so labels do not flicker: each face is tracked from frame to frame
// by box overlap, and its probabilities are an exponential moving average.

const iou = (a, b) => {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = w * h;
  return inter ? inter / (a.width * a.height + b.width * b.height - inter) : 0;
};

export class FaceTracker {
  constructor({ alpha = 0.35, minIou = 0.3, maxMissed = 5 } = {}) {
    Object.assign(this, { alpha, minIou, maxMissed });
    this.tracks = [];
    this.nextId = 1;
  }

  reset() { this.tracks = []; }

  // boxes[i] with probs[i] -> [{ id, box, probs (smoothed) }] for this frame.
  update(boxes, probs) {
    const free = new Set(this.tracks.keys());
    const out = boxes.map((box, i) => {
      let best = -1; let bestIou = this.minIou;
      for (const t of free) {
        const o = iou(this.tracks[t].box, box);
        if (o >= bestIou) { best = t; bestIou = o; }
      }
      if (best < 0) {
        const track = { id: this.nextId++, box, probs: probs[i].slice(), missed: 0 };
        this.tracks.push(track);
        return track;
      }
      free.delete(best);
      const track = this.tracks[best];
      track.box = box;
      track.missed = 0;
      track.probs = track.probs.map((p, k) => (1 - this.alpha) * p + this.alpha * probs[i][k]);
      return track;
    });
    for (const t of free) this.tracks[t].missed += 1;
    this.tracks = this.tracks.filter((t) => t.missed <= this.maxMissed);
    return out.map(({ id, box, probs: p }) => ({ id, box, probs: p }));
  }
}
