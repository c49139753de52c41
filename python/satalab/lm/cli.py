"""satalab-lm: the command line (``python -m satalab.lm`` or scripts/satalab-lm).

Subcommands: corpus, train, capture, heads, evaluate, report. Bad input: one line
``satalab-lm: <message>`` on stderr, exit code 2, nothing written.
"""

import argparse
import json
import os
import sys

from .errors import LmError


def _model_args(p):
    g = p.add_argument_group("model (default: the preset's)")
    g.add_argument("--preset", choices=["default", "tiny"], default="default",
                   help="default: 4 layers x 8 heads x d 16, context 512 (~15 min on 2 cores); tiny: seconds, for tests")
    g.add_argument("--layers", type=int)
    g.add_argument("--heads", type=int)
    g.add_argument("--head-dim", type=int, help="8, 16, 32 or 64")
    g.add_argument("--context", type=int)
    g.add_argument("--rope", dest="rope", action="store_true", default=None, help="rotary positions (default)")
    g.add_argument("--no-rope", dest="rope", action="store_false", help="learned absolute positions")


def _train_args(p):
    g = p.add_argument_group("training (default: the preset's)")
    g.add_argument("--steps", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--seed", type=int)


def _configs(args):
    from dataclasses import replace

    from .train import PRESETS

    model, training = PRESETS[args.preset]
    overrides = {k: getattr(args, a) for k, a in (("layers", "layers"), ("heads", "heads"), ("head_dim", "head_dim"),
                                                  ("context", "context"), ("rope", "rope"))
                 if getattr(args, a, None) is not None}
    model = replace(model, **overrides)
    overrides = {k: getattr(args, k) for k in ("steps", "batch_size", "lr", "seed") if getattr(args, k, None) is not None}
    for k, v in overrides.items():
        if v is not None and (v <= 0 if k != "seed" else v < 0):
            raise LmError(f"--{k.replace('_', '-')} {v} is invalid (allowed: {'>= 0' if k == 'seed' else '> 0'})")
    return model.check(), replace(training, **overrides)


def _common(p):
    p.add_argument("--corpus", help="corpus directories (comma-separated, globs allowed; default /usr/lib/python3.*; "
                                    "env SATALAB_LM_CORPUS)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")


def parser():
    top = argparse.ArgumentParser(prog="satalab-lm", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("corpus", help="the corpus splits (files, bytes, sha256) and the unigram/bigram baselines")
    _common(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("train", help="train (or --resume) a model into a checkpoint")
    _common(p)
    _model_args(p)
    _train_args(p)
    p.add_argument("--out", required=True, help="checkpoint file (refused if it exists, unless --resume or --force)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint --out with the same options")
    p.add_argument("--force", action="store_true", help="start over, replacing --out")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0, help="minutes between checkpoints (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("capture", help="q, k, v of every layer and head on a held-out sequence, one HDF5 file per layer")
    _common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out-dir", required=True, help="directory for layer<L>.h5 (and layer<L>_head<H>.h5 with --per-head)")
    p.add_argument("--split", default="validation", choices=["validation", "train"])
    p.add_argument("--sequence", type=int, default=0, help="which evenly spaced window of the split (default 0)")
    p.add_argument("--windows", type=int, default=64, help="number of evenly spaced windows to choose from (default 64)")
    p.add_argument("--context", type=int, help="tokens (default: the model's context)")
    p.add_argument("--layers", help="comma-separated layer indices (default all)")
    p.add_argument("--per-head", action="store_true", help="also one file per head (for per-head sweeps)")
    p.add_argument("--heads", help="comma-separated head indices kept in the layer files (default all)")
    p.add_argument("--minimal", action="store_true", help="only q, k, v and the attributes (no y, tokens, pre-RoPE)")
    p.add_argument("--force", action="store_true", help="replace existing files")

    p = sub.add_parser("heads", help="per-head logit statistics (from captures) and per-head errors (from sweeps), figures")
    p.add_argument("--capture-dir", required=True)
    p.add_argument("--checkpoint", help="refuse captures of another model than this checkpoint's")
    p.add_argument("--sweeps", nargs="*", default=[], help="results files of satalab sweep over the captures "
                                                            "(with --save-outputs)")
    p.add_argument("--out", required=True, help="CSV of per-head statistics and smallest P")
    p.add_argument("--figures", help="directory for the figures")
    p.add_argument("--force", action="store_true")

    p = sub.add_parser("report", help="Markdown tables of heads / evaluate outputs")
    p.add_argument("--heads", help="CSV of satalab-lm heads")
    p.add_argument("--evaluate", nargs="*", help="CSVs of satalab-lm evaluate")

    p = sub.add_parser("evaluate", help="validation bits per byte with attention replaced through the satalab module")
    _common(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="results CSV (a JSON summary is written next to it)")
    p.add_argument("--methods", default="standard",
                   help="'standard' (SATA P=2..8 at fp32 and fp16-acc32, KV schemes, low-precision policies), "
                        "or a comma-separated list of method specs: exact@fp32, sata-P4@fp16-acc32, kv-int8@fp32, ...")
    p.add_argument("--replace", default="all,each", help="'all' (every layer), 'each' (one layer at a time) and/or "
                                                        "layer indices, comma-separated (default all,each)")
    p.add_argument("--sequences", type=int, default=16, help="validation windows (default 16)")
    p.add_argument("--context", type=int, help="tokens per window (default: the model's context)")
    p.add_argument("--sata-max-p", type=int, default=8, help="largest P of SATA in the standard list (default 8)")
    p.add_argument("--each-max-p", type=int, help="SATA with larger P only replaces all layers, not each one "
                                                  "(saves time; default: no limit)")
    p.add_argument("--figures", help="directory for the figure")
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return top


def _existing(path, force):
    if path and os.path.exists(path) and not force:
        raise LmError(f"'{path}' exists (allowed: --force to replace it, or another path)")


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return run(args)
    except LmError as e:
        print(f"satalab-lm: {e}", file=sys.stderr)
        return 2


def run(args):
    from .train import set_threads

    if getattr(args, "threads", None) is not None:
        if args.threads < 1:
            raise LmError(f"--threads {args.threads} is invalid (allowed: >= 1)")
        set_threads(args.threads)
    if args.command == "corpus":
        from .corpus import baselines, load_corpus

        corpus = load_corpus(args.corpus)
        info = dict(corpus.info, **baselines(corpus))
        if args.json:
            print(json.dumps(info, indent=1))
        else:
            for k, v in info.items():
                print(f"{k:>24}: {v:.4f}" if isinstance(v, float) else f"{k:>24}: {v}")
        return 0
    if args.command == "train":
        from .train import train

        model_config, train_config = _configs(args)
        if args.checkpoint_minutes <= 0:
            raise LmError(f"--checkpoint-minutes {args.checkpoint_minutes} is invalid (allowed: > 0)")
        train(args.out, model_config, train_config, corpus_spec=args.corpus, resume=args.resume, force=args.force,
              checkpoint_minutes=args.checkpoint_minutes, progress=not args.no_progress)
        return 0
    if args.command == "capture":
        from .capture import capture_command

        capture_command(args)
        return 0
    if args.command == "heads":
        from .heads import heads_command

        heads_command(args)
        return 0
    if args.command == "report":
        from .report import report_command

        report_command(args)
        return 0
    if args.command == "evaluate":
        from .evaluate import evaluate_command

        evaluate_command(args)
        return 0
    return 2
