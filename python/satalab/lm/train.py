"""satalab-lm train: seeded, resumable training of the byte-level GPT.

Batches are random windows of context + 1 bytes of the training split, drawn
by a torch.Generator seeded from --seed; the optimizer (AdamW, linear warm-up
then cosine decay to 10%) and that generator are saved in every checkpoint,
so a run interrupted (Ctrl-C, SIGTERM: a checkpoint is written before exit;
kill -9: the last periodic one) and continued with --resume follows the
same trajectory as an uninterrupted one.
"""

import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt
from .corpus import baselines, evaluation_windows, load_corpus
from .errors import LmError
from .model import ByteGPT, ModelConfig, model_hash


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 800
    batch_size: int = 8
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 1
    eval_every: int = 100
    eval_windows: int = 16  # quick validation estimate during training
    final_eval_windows: int = 128

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Presets: the default model (about 15 minutes on 2 cores with OpenBLAS) and a
# tiny one for tests (seconds).
PRESETS = {
    "default": (ModelConfig(layers=4, heads=8, head_dim=16, context=512, rope=True), TrainConfig()),
    "tiny": (ModelConfig(layers=2, heads=4, head_dim=8, context=64, rope=True, mlp_ratio=2),
             TrainConfig(steps=300, batch_size=16, lr=1e-2, warmup=20, eval_every=100, eval_windows=32,
                         final_eval_windows=64)),
}


def set_threads(threads):
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True)


def lr_at(step, config):
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def make_optimizer(model, config):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": other, "weight_decay": 0.0}],
                             lr=config.lr, betas=(0.9, 0.95), eps=1e-8)


def batch(data, context, batch_size, generator):
    starts = torch.randint(0, data.numel() - context - 1, (batch_size,), generator=generator)
    rows = torch.stack([data[s:s + context + 1] for s in starts.tolist()])
    return rows[:, :-1].long(), rows[:, 1:].long()


@torch.no_grad()
def validation_loss(model, data, windows, batch_size=16):
    """(bits per byte, next-byte accuracy) of the model on the windows
    (context + 1 bytes each, start offsets `windows`) of `data` (uint8 numpy)."""
    context = model.config.context
    total_nats, correct, count = 0.0, 0, 0
    was_training = model.training
    model.eval()
    for i in range(0, len(windows), batch_size):
        rows = torch.from_numpy(np.stack([data[s:s + context + 1] for s in windows[i:i + batch_size]]).astype(np.int64))
        logits = model(rows[:, :-1])
        targets = rows[:, 1:]
        total_nats += F.cross_entropy(logits.reshape(-1, 256), targets.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == targets).sum().item()
        count += targets.numel()
    model.train(was_training)
    return total_nats / count / math.log(2.0), correct / count


class _Stop:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint and exits."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def train(out, model_config, train_config, corpus_spec=None, resume=False, force=False,
          checkpoint_minutes=3.0, progress=True, log=print):
    """Trains (or continues) a model into checkpoint `out`. Returns the final
    checkpoint payload; raises LmError on bad input before writing anything,
    and SystemExit(130/143) after saving when interrupted."""
    if os.path.exists(out) and not (resume or force):
        raise LmError(f"checkpoint '{out}' exists (allowed: --resume to continue it, --force to start over, "
                      f"or another --out)")
    if resume and not os.path.exists(out):
        raise LmError(f"--resume: checkpoint '{out}' not found (allowed: an existing checkpoint of satalab-lm train)")
    model_config.check()
    payload = None
    if resume:
        payload = ckpt.load(out)
        saved_model = ModelConfig.from_dict(payload["model_config"])
        saved_train = TrainConfig.from_dict(payload["train_config"])
        if saved_model != model_config:
            raise LmError(f"checkpoint '{out}' is of another configuration ({saved_model.describe()}), not "
                          f"{model_config.describe()} (allowed: resume with the options it was started with)")
        if saved_train != train_config:
            diff = [f.name for f in fields(TrainConfig) if getattr(saved_train, f.name) != getattr(train_config, f.name)]
            raise LmError(f"checkpoint '{out}' was trained with other settings ({', '.join(f'{n}={getattr(saved_train, n)}' for n in diff)}) "
                          f"(allowed: resume with the options it was started with)")
        if payload.get("finished"):
            log(f"checkpoint '{out}' is finished (step {payload['step']}); nothing to do")
            return payload
    corpus = load_corpus(corpus_spec)
    if corpus.train.size < model_config.context + 2:
        raise LmError(f"training split of {corpus.train.size} bytes is shorter than context + 2 = "
                      f"{model_config.context + 2} (allowed: a larger corpus or a shorter context)")
    if payload is not None and payload["corpus"]["train_sha256"] != corpus.info["train_sha256"]:
        raise LmError(f"checkpoint '{out}' was trained on another corpus (train sha256 "
                      f"{payload['corpus']['train_sha256'][:16]}..., this corpus {corpus.info['train_sha256'][:16]}...) "
                      f"(allowed: the corpus it was started on)")

    torch.manual_seed(train_config.seed)
    model = ByteGPT(model_config)
    optimizer = make_optimizer(model, train_config)
    generator = torch.Generator().manual_seed(train_config.seed)
    step, elapsed, history = 0, 0.0, []
    base = baselines(corpus)
    if payload is not None:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        generator.set_state(payload["generator"])
        step, elapsed, history = payload["step"], payload["elapsed_seconds"], payload["history"]
    log(f"corpus: {corpus.info['train_files']} training files ({corpus.info['train_bytes']:,} bytes), "
        f"{corpus.info['validation_files']} validation files ({corpus.info['validation_bytes']:,} bytes)")
    log(f"baselines on validation: unigram {base['unigram_bits_per_byte']:.3f}, "
        f"bigram {base['bigram_bits_per_byte']:.3f} bits per byte")
    parameters = sum(p.numel() for p in model.parameters())
    log(f"model: {model_config.describe()}, {parameters:,} parameters; "
        f"{train_config.steps} steps of {train_config.batch_size} x {model_config.context} bytes"
        + (f"; resuming at step {step}" if step else ""))

    data = torch.from_numpy(corpus.train.copy())
    eval_windows = evaluation_windows(corpus.validation, model_config.context, train_config.eval_windows)

    def snapshot(finished, final=None):
        return {"format": ckpt.FORMAT, "model_config": model_config.to_dict(),
                "train_config": asdict(train_config), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "step": step,
                "elapsed_seconds": elapsed, "history": history, "finished": finished,
                "corpus": corpus.info, "baselines": base, "model_hash": model_hash(model),
                "parameters": parameters, "final": final, "torch_version": torch.__version__,
                "threads": torch.get_num_threads()}

    from tqdm import tqdm

    model.train()
    last_save = time.monotonic()
    bar = tqdm(total=train_config.steps, initial=step, disable=not progress, unit="step", dynamic_ncols=True,
               file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 30.0)
    with _Stop() as stop:
        while step < train_config.steps:
            started = time.monotonic()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, train_config)
            x, y = batch(data, model_config.context, train_config.batch_size, generator)
            loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
            optimizer.step()
            step += 1
            bits = loss.item() / math.log(2.0)
            record = {"step": step, "train_bits_per_byte": bits}
            if step % train_config.eval_every == 0 or step == train_config.steps:
                record["validation_bits_per_byte"] = validation_loss(model, corpus.validation, eval_windows)[0]
            history.append(record)
            elapsed += time.monotonic() - started
            postfix = {"bits/byte": f"{bits:.3f}"}
            val = next((h["validation_bits_per_byte"] for h in reversed(history) if "validation_bits_per_byte" in h), None)
            if val is not None:
                postfix["val"] = f"{val:.3f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            if stop.signal is not None:
                bar.close()
                ckpt.save(out, snapshot(False))
                name = "SIGINT" if stop.signal == signal.SIGINT else "SIGTERM"
                log(f"{name}: stopped at step {step}; checkpoint '{out}' written; continue with --resume")
                raise SystemExit(128 + stop.signal)
            if step < train_config.steps and time.monotonic() - last_save >= 60.0 * checkpoint_minutes:
                ckpt.save(out, snapshot(False))
                last_save = time.monotonic()
    bar.close()

    windows = evaluation_windows(corpus.validation, model_config.context, train_config.final_eval_windows)
    bits, accuracy = validation_loss(model, corpus.validation, windows)
    final = {"validation_bits_per_byte": bits, "validation_accuracy": accuracy,
             "validation_windows": int(len(windows)), "bytes_evaluated": int(len(windows) * model_config.context),
             "margin_below_bigram": base["bigram_bits_per_byte"] - bits,
             "margin_below_unigram": base["unigram_bits_per_byte"] - bits, "train_seconds": elapsed}
    payload = snapshot(True, final)
    ckpt.save(out, payload)
    log(f"validation: {bits:.4f} bits per byte ({len(windows)} windows of {model_config.context} bytes), "
        f"next-byte accuracy {accuracy:.3f}; bigram {base['bigram_bits_per_byte']:.3f} "
        f"(margin {final['margin_below_bigram']:.3f}), unigram {base['unigram_bits_per_byte']:.3f}; "
        f"{elapsed / 60:.1f} min of training; checkpoint '{out}', model_hash {payload['model_hash']}")
    return payload
