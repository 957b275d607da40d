"""The acoustic model: optional strided Conv1D subsampling, stacked (Bi)LSTMs, a dense CTC head.

Built so Keras picks the cuDNN LSTM kernel on a GPU (tanh/sigmoid, no recurrent dropout, unroll off,
bias on, a strictly right-padded mask built from the true lengths) while the same weights run on CPU.
The conv uses explicit zero padding and ``padding="valid"``, and padded input frames are zeroed
inside the model, so a clip gives the same output alone or in any padded batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import keras
from keras import layers, ops

from speech.errors import ModelError
from speech.features import FeatureConfig
from speech.manifest import atomic_write
from speech.text import Vocabulary


@dataclass(frozen=True)
class ModelConfig:
    num_features: int = 26
    conv_channels: int = 128  # 0: no conv front end
    conv_kernel: int = 5  # odd, so output length is exactly ceil(T / stride)
    conv_stride: int = 2
    lstm_units: int = 256
    lstm_layers: int = 3
    bidirectional: bool = True
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.conv_channels and self.conv_kernel % 2 == 0:
            raise ValueError("conv_kernel must be odd")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def subsampling(self) -> int:
        return self.conv_stride if self.conv_channels else 1

    def output_length(self, input_length):
        """Frames out of the model for ``input_length`` frames in (ints or tensors)."""
        s = self.subsampling
        return (input_length - 1) // s + 1 if s > 1 else input_length

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        return cls(**data)


PRESETS: dict[str, ModelConfig] = {
    # Tests: trains in seconds on a CPU.
    "tiny": ModelConfig(conv_channels=64, conv_kernel=5, conv_stride=2, lstm_units=64, lstm_layers=2,
                        bidirectional=True, dropout=0.0),
    # The CPU-trainable default: stride 3 (30 ms output frames, still above the ~15 characters/s of
    # speech) makes the LSTMs a third cheaper than stride 2; measured by scripts/bench.py.
    "small": ModelConfig(conv_channels=192, conv_kernel=5, conv_stride=3, lstm_units=192, lstm_layers=4,
                         bidirectional=True, dropout=0.15),
    # For GPUs (cuDNN).
    "large": ModelConfig(conv_channels=384, conv_kernel=5, conv_stride=2, lstm_units=512, lstm_layers=5,
                         bidirectional=True, dropout=0.2),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


class MaskPadding(layers.Layer):
    """Zero the frames past each row's length, so padding never leaks into valid frames."""

    def call(self, x, lengths):
        mask = ops.arange(ops.shape(x)[1], dtype="int32")[None, :] < ops.cast(lengths, "int32")[:, None]
        return x * ops.cast(mask, x.dtype)[:, :, None]


class LengthMask(layers.Layer):
    """Boolean mask ``[B, T']`` of the valid frames after subsampling by ``stride`` (right-padded)."""

    def __init__(self, stride: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, x, lengths):
        lengths = ops.cast(lengths, "int32")
        out_lengths = (lengths - 1) // self.stride + 1 if self.stride > 1 else lengths
        return ops.arange(ops.shape(x)[1], dtype="int32")[None, :] < out_lengths[:, None]

    def compute_output_spec(self, x, lengths):
        return keras.KerasTensor(x.shape[:2], dtype="bool")


def build_model(config: ModelConfig, num_classes: int, name: str = "lstm_ctc") -> keras.Model:
    """Inputs ``features [B, T, F]`` and ``lengths [B]`` (valid frames); output logits ``[B, T', C]`` (float32)."""
    features = keras.Input(shape=(None, config.num_features), name="features", dtype="float32")
    lengths = keras.Input(shape=(), name="lengths", dtype="int32")

    x = MaskPadding(name="mask_padding")(features, lengths)
    if config.conv_channels:
        pad = config.conv_kernel // 2
        x = layers.ZeroPadding1D((pad, pad), name="conv_pad")(x)
        x = layers.Conv1D(config.conv_channels, config.conv_kernel, strides=config.conv_stride, padding="valid",
                          name="conv")(x)
        x = layers.LayerNormalization(name="conv_norm")(x)
        x = layers.Activation("gelu", name="conv_act")(x)
    mask = LengthMask(config.subsampling, name="length_mask")(x, lengths)
    for i in range(config.lstm_layers):
        lstm = layers.LSTM(config.lstm_units, return_sequences=True, name=f"lstm_{i}")
        if config.bidirectional:
            lstm = layers.Bidirectional(lstm, name=f"bilstm_{i}")
        x = lstm(x, mask=mask)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model({"features": features, "lengths": lengths}, logits, name=name)


# ---------------------------------------------------------------------------------------------------------
# Model folders: a model is self-describing, so ``--model DIR`` is all any entry point needs.

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"  # package data (checkout: a link)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model and its front end: features, network, vocabulary."""

    features: FeatureConfig
    model: ModelConfig
    vocab: Vocabulary

    @property
    def frame_seconds(self) -> float:
        """Seconds per output frame of the network (after subsampling)."""
        return self.features.frame_seconds * self.model.subsampling

    def to_json(self) -> dict:
        return {"format": "speech-lstm-ctc", "version": 1, "features": self.features.to_json(),
                "model": self.model.to_json(), "vocab": self.vocab.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> ModelSpec:
        return cls(FeatureConfig.from_json(data["features"]), ModelConfig.from_json(data["model"]),
                   Vocabulary.from_json(data["vocab"]))

    def build(self) -> keras.Model:
        return build_model(self.model, self.vocab.num_classes)


def save_model(directory: str | Path, model: keras.Model, spec: ModelSpec, extra: dict | None = None) -> None:
    """Write weights and config atomically (temp + rename each), so a killed job leaves the old pair or the new."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{WEIGHTS_FILE}.{os.getpid()}.tmp.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, directory / WEIGHTS_FILE)
    with atomic_write(directory / CONFIG_FILE) as f:
        json.dump({**spec.to_json(), **(extra or {})}, f, indent=1)


BUNDLED_MODEL_NAME = "default"  # ``--model default`` / ``--init-from default``: the bundled model


def resolve_model_dir(directory: str | Path | None) -> Path:
    """``None`` or ``"default"`` means the bundled default model (a folder of that name: ``./default``)."""
    bundled = directory is None or str(directory) == BUNDLED_MODEL_NAME
    path = DEFAULT_MODEL_DIR if bundled else Path(directory)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        hint = " (the bundled default model is missing from this checkout)" if bundled else ""
        raise ModelError(f"not a model folder: needs {CONFIG_FILE} and {WEIGHTS_FILE}{hint}", str(path))
    return path


def load_spec(directory: str | Path | None) -> ModelSpec:
    path = resolve_model_dir(directory)
    try:
        return ModelSpec.from_json(json.loads((path / CONFIG_FILE).read_text()))
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(f"unreadable {CONFIG_FILE}: {e}", str(path)) from e


def load_model(directory: str | Path | None) -> tuple[keras.Model, ModelSpec]:
    """Rebuild the network from its config and load the weights."""
    spec = load_spec(directory)
    model = spec.build()
    model.load_weights(resolve_model_dir(directory) / WEIGHTS_FILE)
    return model, spec
