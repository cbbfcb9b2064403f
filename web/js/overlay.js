// Drawing: boxes and labels on a canvas laid over the video or photo, and the bars.

const COLOURS = {
  neutral: '#9e9e9e', happiness: '#ffca28', surprise: '#26c6da', sadness: '#42a5f5',
  anger: '#ef5350', disgust: '#66bb6a', fear: '#ab47bc', contempt: '#8d6e63',
};

// Size the canvas to the element it covers and map source pixels onto it, as
// `object-fit: contain` does; `mirrored` flips x to follow a mirrored preview.
export function drawFaces(canvas, sourceWidth, sourceHeight, faces, { mirrored = false } = {}) {
  const rect = canvas.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(rect.width * dpr);
  canvas.height = Math.round(rect.height * dpr);
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!sourceWidth || !sourceHeight) return;
  const scale = Math.min(canvas.width / sourceWidth, canvas.height / sourceHeight);
  const offX = (canvas.width - sourceWidth * scale) / 2;
  const offY = (canvas.height - sourceHeight * scale) / 2;
  const font = Math.max(12, Math.round(14 * dpr));
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.lineWidth = Math.max(2, 2 * dpr);
  for (const face of faces) {
    const { x, y, width, height } = face.box;
    const left = offX + (mirrored ? sourceWidth - x - width : x) * scale;
    const top = offY + y * scale;
    const colour = COLOURS[face.label] || '#fff';
    ctx.strokeStyle = colour;
    ctx.strokeRect(left, top, width * scale, height * scale);
    const text = `${face.label} ${Math.round(face.score * 100)}%`;
    const tw = ctx.measureText(text).width + 8;
    const ty = top - font - 6 >= 0 ? top - font - 6 : top + height * scale;
    ctx.fillStyle = colour;
    ctx.fillRect(left - ctx.lineWidth / 2, ty, tw, font + 6);
    ctx.fillStyle = '#111';
    ctx.fillText(text, left + 4 - ctx.lineWidth / 2, ty + font);
  }
}

export function drawBars(list, classes, probs) {
  if (list.children.length !== classes.length) {
    list.innerHTML = classes.map((c) => `<li data-class="${c}"><span>${c}</span><span class="bar"><span class="fill"></span></span><span class="value">–</span></li>`).join('');
  }
  classes.forEach((c, i) => {
    const li = list.children[i];
    const p = probs ? probs[i] : 0;
    li.querySelector('.fill').style.width = `${(p * 100).toFixed(1)}%`;
    li.querySelector('.fill').style.background = COLOURS[c];
    li.querySelector('.value').textContent = probs ? `${Math.round(p * 100)}%` : '–';
  });
}
