// Loads a "kernels4" bundle (export/kernels4.py): tfjs reads 8- and 16-bit weights itself, not our
// 4-bit kernels with a minimum and step per output channel, so those are expanded to float32 here
// and the graph is loaded from memory. Every other weights group goes to tfjs as it came.
import { tf } from './tf.js';

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.pathname}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

function concat(arrays) {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) { out.set(a, offset); offset += a.length; }
  return out;
}

// One uint4 entry at `offset` of `bytes` -> [Float32Array of its values, bytes it took].
function unpackKernel(bytes, offset, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  const channels = shape[shape.length - 1];
  const levelBytes = Math.ceil(n / 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset + levelBytes, 8 * channels);
  const lo = new Float32Array(channels);
  const step = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    lo[c] = view.getFloat32(4 * c, true);
    step[c] = view.getFloat32(4 * (channels + c), true);
  }
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const byte = bytes[offset + (i >> 1)];
    const level = i & 1 ? byte >> 4 : byte & 15;
    const c = i % channels;
    values[i] = lo[c] + level * step[c];
  }
  return [values, levelBytes + 8 * channels];
}

export async function loadKernels4Model(modelUrl) {
  const r = await fetch(modelUrl);
  if (!r.ok) throw new Error(`model.json: HTTP ${r.status}`);
  const spec = await r.json();
  const weightSpecs = [];
  const parts = [];
  for (const group of spec.weightsManifest) {
    const bytes = concat(await Promise.all(group.paths.map((p) => fetchBytes(new URL(p, modelUrl)))));
    if (!group.weights.some((w) => w.quantization?.dtype === 'uint4')) {
      weightSpecs.push(...group.weights);
      parts.push(bytes);
      continue;
    }
    let offset = 0;
    for (const w of group.weights) {
      const [values, size] = unpackKernel(bytes, offset, w.shape);
      weightSpecs.push({ name: w.name, shape: w.shape, dtype: 'float32' });
      parts.push(new Uint8Array(values.buffer));
      offset += size;
    }
  }
  const { modelTopology, format, generatedBy, convertedBy, signature, userDefinedMetadata, modelInitializer } = spec;
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology, format, generatedBy, convertedBy, signature, userDefinedMetadata, modelInitializer,
    weightSpecs, weightData: concat(parts).buffer,
  }));
}
