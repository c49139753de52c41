"""satalab.lm: a small byte-level language model trained here, to give the
workbench real attention inputs (issue 16).

    scripts/satalab-lm train --out data/lm/default.pt          # ~15 min on 2 cores (OpenBLAS)
    scripts/satalab-lm capture --checkpoint data/lm/default.pt --out-dir data/lm/capture
    satalab run --method sata --taylor-terms 6 --input data/lm/capture/layer0.h5
    scripts/satalab-lm evaluate --checkpoint data/lm/default.pt --out results/lm/evaluate.csv

Modules: corpus (the Python standard library's sources, split by path hash;
unigram/bigram baselines), model (ByteGPT: causal, pre-norm, RoPE optional,
attention through one function), train (seeded, resumable), capture
(record_attention: q, k, v of any model's scaled_dot_product_attention
calls; HDF5 files for `satalab run --input`), heads (per-head logit
statistics and errors), evaluate (validation bits per byte with attention
replaced by satalab.attention), figures. Needs PyTorch (Debian's
python3-torch; scripts/setup.sh --with-lm). Importing satalab.lm does not
import torch; its submodules do.
"""
