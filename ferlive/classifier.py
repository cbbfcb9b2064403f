"""The FER+ classifier: a saved Keras model plus the facts a caller needs about it."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.data import EMOTIONS  # the one list of classes, in FER+ order

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "api" / "model.keras"  # the page ships models/pagenet


@dataclass
class ModelInfo:
    name: str
    version: str
    classes: list[str]
    input_size: int
    params: int
    metrics: dict = field(default_factory=dict)


def model_version(path: Path) -> str:
    """Name plus a content hash: the same file gives the same version in every clone."""
    import hashlib

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:10]
    return f"{Path(path).parent.name}-{digest}"


class EmotionClassifier:
    """Loads the model once; `predict` is safe to call from many threads at once."""

    def __init__(self, path: str | os.PathLike | None = None):
        from training.models import load_model  # deferred: importing the backend takes seconds

        self.path = Path(path or os.environ.get("FERLIVE_MODEL", DEFAULT_MODEL))
        if not self.path.is_file():
            raise FileNotFoundError(f"model file {self.path} not found (set FERLIVE_MODEL or train one)")
        self.model = load_model(self.path)
        self._forward = _compiled(self.model)
        self._lock = threading.Lock()  # one forward pass at a time; each already uses every core
        metrics_file = self.path.parent / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        classes = metrics.get("classes") or EMOTIONS
        self.info = ModelInfo(
            name=self.model.name,
            version=model_version(self.path),
            classes=list(classes),
            input_size=int(self.model.input_shape[1]),
            params=int(self.model.count_params()),
            metrics=metrics,
        )
        self.predict(np.zeros((1, self.info.input_size, self.info.input_size, 1), np.float32))  # warm up

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(n, 48, 48, 1) gray values 0-255 -> (n, 8) probabilities in FER+ order."""
        if len(faces) == 0:
            return np.zeros((0, len(self.info.classes)), np.float32)
        with self._lock:
            return np.asarray(self._forward(np.asarray(faces, np.float32)))


def _compiled(model):
    """The model's forward pass as one TensorFlow graph: a Keras call in eager mode runs
    layer by layer from Python, about 7x slower for a handful of faces (103 vs 15 ms for two)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: model(x, training=False)
    import tensorflow as tf

    size = model.input_shape[1]
    return tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                       input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)])
