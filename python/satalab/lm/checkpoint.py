"""Checkpoints of satalab-lm: one torch.save file holding the model and
training configurations, the weights, the optimizer and RNG state (for
--resume), the corpus identity and the training history. Written to a
temporary name and renamed into place (a reader never sees half a file)."""

import os

import torch

from .errors import LmError
from .model import ByteGPT, ModelConfig, model_hash

FORMAT = "satalab-lm checkpoint 1"


def save(path, payload):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path):
    if not os.path.isfile(path):
        raise LmError(f"checkpoint '{path}' not found (allowed: a file written by satalab-lm train)")
    try:
        payload = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise LmError(f"checkpoint '{path}' cannot be read ({type(e).__name__}: {e}) "
                      f"(allowed: a file written by satalab-lm train)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LmError(f"'{path}' is not a satalab-lm checkpoint (allowed: a file written by satalab-lm train)")
    return payload


def load_model(path, expected_config=None):
    """(model in eval mode, payload). expected_config: a ModelConfig the
    checkpoint must have (else LmError naming both)."""
    payload = load(path)
    config = ModelConfig.from_dict(payload["model_config"])
    if expected_config is not None and expected_config != config:
        raise LmError(f"checkpoint '{path}' is of another configuration ({config.describe()}), not "
                      f"{expected_config.describe()} (allowed: the options it was trained with)")
    model = ByteGPT(config)
    model.load_state_dict(payload["model"])
    model.eval()
    if payload.get("model_hash") and payload["model_hash"] != model_hash(model):
        raise LmError(f"checkpoint '{path}' is damaged: its weights do not hash to the recorded model_hash "
                      f"{payload['model_hash']}")
    return model, payload
