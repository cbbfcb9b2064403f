// Wires the page: camera or photo -> detector -> classifier -> smoothing -> overlay.
// No module here knows both the camera and the model; this one only connects them.
// What a person sees is also published as window.ferlive.state (boxes, labels, scores,
// timings) so tests and tools can read it.
import { tf, pickBackend } from './tf.js';
import { Camera, CameraError } from './camera.js';
import { FaceDetector } from './detector.js';
import { MAX_SIDE } from './blazeface.js'; // big phone photos are shrunk: faster, and detection needs no more
import { ExpressionClassifier } from './classifier.js';
import { FaceTracker } from './smoothing.js';
import { drawBars, drawFaces } from './overlay.js';

const $ = (id) => document.getElementById(id);
const ui = {
  video: $('video'), photo: $('photo'), overlay: $('overlay'), intro: $('intro'), start: $('start'),
  message: $('message'), switchCam: $('switch'), stop: $('stop'), file: $('file'), viewport: $('viewport'),
  bars: $('bars'), fps: $('fps'), detectMs: $('detect-ms'), classifyMs: $('classify-ms'),
  backend: $('backend'), modelName: $('model-name'),
};

const ferlive = (window.ferlive = { ready: false, error: null, backend: null, state: null });
const camera = new Camera(ui.video);
const tracker = new FaceTracker();
let classifier; let detector;
let running = false; let frameCount = 0; let lastFrameAt = 0; let fps = 0;

function say(text, { error = false } = {}) {
  ui.message.textContent = text;
  ui.message.classList.toggle('error', error);
}

const argmax = (a) => a.reduce((best, v, i) => (v > a[best] ? i : best), 0);

function describe(boxes, probs) {
  return boxes.map((box, i) => {
    const k = argmax(probs[i]);
    return {
      box: { x: box.x, y: box.y, width: box.width, height: box.height },
      ...(box.foundBy ? { foundBy: box.foundBy, detectorScore: box.score } : {}),
      label: classifier.classes[k], score: probs[i][k],
      scores: Object.fromEntries(classifier.classes.map((c, j) => [c, probs[i][j]])),
    };
  });
}

function publish(mode, width, height, faces, timings, extra = {}) {
  ferlive.state = { mode, frame: frameCount, width, height, mirrored: mode === 'camera' && camera.mirrored,
    faces, timings, fps: Math.round(fps * 10) / 10, backend: ferlive.backend, ...extra };
  drawBars(ui.bars, classifier.classes, faces[0] ? classifier.classes.map((c) => faces[0].scores[c]) : null);
  ui.detectMs.textContent = `${timings.detect.toFixed(1)} ms`;
  ui.classifyMs.textContent = `${timings.classify.toFixed(1)} ms`;
  ui.fps.textContent = mode === 'camera' ? fps.toFixed(1) : '–';
}

async function step() {
  if (!running) return;
  if (document.hidden) { running = false; return; } // resumed by visibilitychange
  const t0 = performance.now();
  const frame = tf.browser.fromPixels(ui.video); // one frame for both models
  let boxes; let probs; let t1;
  try {
    boxes = await detector.detect(frame);
    t1 = performance.now();
    probs = classifier.classify(frame, boxes);
  } catch (err) {
    running = false;
    say(`Processing stopped: ${err.message}. Press Stop camera, then Start camera to retry.`, { error: true });
    return;
  } finally {
    frame.dispose();
  }
  const t2 = performance.now();
  frameCount += 1;
  if (lastFrameAt) fps = fps ? 0.9 * fps + 0.1 * (1000 / (t2 - lastFrameAt)) : 1000 / (t2 - lastFrameAt);
  lastFrameAt = t2;
  const tracked = tracker.update(boxes, probs);
  const faces = describe(tracked.map((t) => t.box), tracked.map((t) => t.probs))
    .map((f, i) => ({ id: tracked[i].id, ...f, raw: probs[i] }));
  const { videoWidth: w, videoHeight: h } = ui.video;
  drawFaces(ui.overlay, w, h, faces, { mirrored: camera.mirrored });
  publish('camera', w, h, faces, { detect: t1 - t0, classify: t2 - t1, total: t2 - t0 },
    { videoTime: ui.video.currentTime });
  say(faces.length ? '' : 'No face in view: face the camera in good light.');
  requestAnimationFrame(step);
}

function startLoop() {
  if (running || !camera.stream) return;
  running = true;
  lastFrameAt = 0;
  requestAnimationFrame(step);
}

async function startCamera(facing) {
  ui.start.disabled = true;
  say('Starting the camera…');
  try {
    await (facing ? camera.start(facing) : camera.start());
  } catch (err) {
    ui.start.disabled = false;
    ui.start.textContent = 'Try again';
    ferlive.error = err.message;
    say(err instanceof CameraError ? err.message : `Camera error: ${err.message}`, { error: true });
    return;
  }
  ferlive.error = null;
  ui.photo.hidden = true;
  ui.video.hidden = false;
  ui.video.classList.toggle('mirrored', camera.mirrored);
  ui.intro.hidden = true;
  ui.stop.hidden = false;
  ui.switchCam.hidden = !(await camera.hasSeveralCameras().catch(() => false));
  tracker.reset();
  say('');
  startLoop();
}

function stopCamera() {
  running = false;
  camera.stop();
  ui.stop.hidden = true;
  ui.switchCam.hidden = true;
  ui.intro.hidden = false;
  ui.start.disabled = false;
  ui.start.textContent = 'Start camera';
  drawFaces(ui.overlay, 0, 0, []);
}


async function showPhoto(file) {
  if (!file) return;
  if (!file.type.startsWith('image/')) {
    say(`"${file.name}" is not an image. Choose a JPEG, PNG or WebP photo.`, { error: true });
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    say(`Could not read "${file.name}" as an image: it may be damaged or in an unsupported format.`, { error: true });
    return;
  }
  if (camera.stream) stopCamera();
  say('Looking for faces…');
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const w = Math.round(bitmap.width * scale); const h = Math.round(bitmap.height * scale);
  Object.assign(ui.photo, { width: w, height: h });
  ui.photo.getContext('2d').drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  ui.photo.hidden = false;
  ui.video.hidden = true;
  ui.intro.hidden = true;
  let boxes; let probs; let t1; let t2;
  const t0 = performance.now();
  try {
    boxes = await detector.detect(ui.photo, { tiles: true });
    t1 = performance.now();
    probs = classifier.classify(ui.photo, boxes);
    t2 = performance.now();
  } catch (err) { // e.g. the GPU context lost: say so rather than "Looking for faces…" for ever
    say(`Could not process "${file.name}": ${err.message}. Reload the page to retry.`, { error: true });
    return;
  }
  frameCount += 1;
  const faces = describe(boxes, probs);
  drawFaces(ui.overlay, w, h, faces);
  publish('photo', w, h, faces, { detect: t1 - t0, classify: t2 - t1, total: t2 - t0 }, { scale, name: file.name });
  const bordered = faces.some((f) => f.foundBy === 'padded') ? ' It fills the photo, so it was found with a border added around it.' : '';
  say(faces.length ? `${faces.length} face${faces.length > 1 ? 's' : ''} found.${bordered}` : 'No face found in this photo.');
  ui.start.disabled = false;
  ui.start.textContent = 'Start camera';
}

function cameraEnded() {
  stopCamera();
  ui.start.textContent = 'Restart camera';
  ferlive.state = null;
  say('The camera stopped (unplugged, switched off, or taken by another app). Press Restart camera to try again.',
    { error: true });
}

function wireEvents() {
  camera.onended = cameraEnded;
  ui.start.addEventListener('click', () => startCamera());
  ui.stop.addEventListener('click', stopCamera);
  ui.switchCam.addEventListener('click', () => startCamera(camera.facingMode === 'user' ? 'environment' : 'user'));
  ui.file.addEventListener('change', () => { showPhoto(ui.file.files[0]); ui.file.value = ''; });
  for (const type of ['dragenter', 'dragover']) {
    ui.viewport.addEventListener(type, (e) => { e.preventDefault(); ui.viewport.classList.add('dragging'); });
  }
  for (const type of ['dragleave', 'drop']) {
    ui.viewport.addEventListener(type, (e) => { e.preventDefault(); ui.viewport.classList.remove('dragging'); });
  }
  ui.viewport.addEventListener('drop', (e) => showPhoto(e.dataTransfer.files[0]));
  document.addEventListener('visibilitychange', () => { if (!document.hidden) startLoop(); });
  window.addEventListener('resize', () => ferlive.state && ui.photo.hidden === false
    && drawFaces(ui.overlay, ui.photo.width, ui.photo.height, ferlive.state.faces));
}

async function init() {
  wireEvents();
  if (!window.isSecureContext) {
    say('This page is not in a secure context, so the camera is blocked. Open it over HTTPS or on http://localhost. Photos still work.', { error: true });
  }
  try {
    ferlive.backend = await pickBackend();
    [classifier, detector] = await Promise.all([ExpressionClassifier.load(), FaceDetector.load()]);
  } catch (err) {
    ferlive.error = `model failed to load: ${err.message}`;
    ui.start.textContent = 'Unavailable';
    say(`The expression model failed to load (${err.message}). Check your connection to this server and reload the page.`, { error: true });
    return;
  }
  ui.backend.textContent = ferlive.backend + (ferlive.backend === 'wasm' ? ` (${crossOriginIsolated ? 'threads' : 'no threads'})` : '');
  ui.modelName.textContent = `${classifier.meta.name} (${(classifier.meta.bundle_bytes / 1e6).toFixed(1)} MB)`;
  drawBars(ui.bars, classifier.classes, null);
  // For tests and tools: run the bundle on raw 48x48 faces, or see the crops it is fed.
  ferlive.predictFaces = (batch) => tf.tidy(() => classifier.model.predict(tf.tensor(batch).reshape([-1, 48, 48, 1])).arraySync());
  ferlive.cropsOf = async (url, boxes) => {
    const img = new Image(); img.src = url; await img.decode();
    return classifier.crops(img, boxes);
  };
  ferlive.meta = classifier.meta;
  Object.assign(ferlive, { classifier, detector, stopCamera }); // for bench/ and devtools
  ferlive.ready = true;
  if (Camera.supported() && window.isSecureContext) {
    ui.start.disabled = false;
    ui.start.textContent = 'Start camera';
  } else {
    ui.start.textContent = 'Camera unavailable';
  }
}

init();
