// The camera: starts a stream into a <video>, switches front/back, explains failures.

export class CameraError extends Error {}

function explain(err) {
  if (!window.isSecureContext) {
    return 'The camera only works on a secure page. Open this page over HTTPS (see README: "Phones on your LAN") or on http://localhost.';
  }
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was denied. Allow camera access for this site in your browser settings, then press Start again. You can still choose a photo.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found on this device. You can still choose or drop a photo.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera is in use by another app or could not start. Close other apps using it and try again.';
    default:
      return `The camera could not start: ${err?.message || err}`;
  }
}

export class Camera {
  constructor(video) {
    this.video = video;
    this.stream = null;
    this.facingMode = 'user';
    this.onended = null; // called when the camera stops by itself (not by stop())
  }

  static supported() {
    return Boolean(navigator.mediaDevices?.getUserMedia);
  }

  async start(facingMode = this.facingMode) {
    if (!Camera.supported()) throw new CameraError(explain(new Error('getUserMedia is not available')));
    this.stop();
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode, width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (err) {
      throw new CameraError(explain(err));
    }
    this.facingMode = facingMode;
    // A track ends when the camera is unplugged, revoked or taken by the system; without this
    // the page would go on showing the last frame as if it were live.
    const stream = this.stream;
    stream.getVideoTracks()[0]?.addEventListener('ended', () => {
      if (this.stream === stream) this.onended?.();
    });
    this.video.srcObject = this.stream;
    await this.video.play();
    if (!this.video.videoWidth) await new Promise((r) => this.video.addEventListener('loadeddata', r, { once: true }));
    return this;
  }

  // The preview is mirrored only for a front camera, as in every camera app.
  get mirrored() {
    const setting = this.stream?.getVideoTracks()[0]?.getSettings?.().facingMode;
    return (setting || this.facingMode) !== 'environment';
  }

  async hasSeveralCameras() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.filter((d) => d.kind === 'videoinput').length > 1;
  }

  switch() {
    return this.start(this.facingMode === 'user' ? 'environment' : 'user');
  }

  stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.video.srcObject = null;
  }
}
