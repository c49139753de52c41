#!/usr/bin/python3
"""Check that a portable build uses no AVX-512 outside the functions that are
chosen at run time (docs/architecture.md, "Build and provenance").

    check_instructions.py OBJDUMP BINARY [BINARY ...]

Disassembles each binary and lists every function containing an AVX-512
instruction (a zmm register, ymm/xmm 16-31, an opmask register, or an
AVX-512-only mnemonic). Functions named in ALLOWED are called only after
__builtin_cpu_supports("avx512f") (lib/src/numeric/vector_math.cpp). Exit 0
when nothing else uses AVX-512, else 1 with one line per offending function.
"""
import re
import subprocess
import sys

# Dispatched at run time: the exp compiled with __attribute__((target("avx512f")))
# (lib/src/numeric/vector_math.cpp) and Eigen's products compiled for
# x86-64-v4 in their own namespaces (lib/gemm/).
ALLOWED = ("exp_avx512", "satalab_eigen_avx512::", "satalab::gemm::avx512::")

REGISTER = re.compile(r"%zmm\d+|%[xy]mm(?:1[6-9]|2\d|3[01])\b|%k[0-7]\b")
MNEMONIC = re.compile(
    r"^\s*(?:vpternlog|vpermt2|vpermi2|vpcompress|vpexpand|vcompress|vexpand|vrndscale|vrcp14|vrsqrt14|"
    r"vfixupimm|vgetexp|vgetmant|vscalef|vpro[lr][dq]|vpro[lr]v|vpsraq|vpsravq|vpabsq|vp(?:max|min)[su]q|"
    r"vpmullq|vcvtt?pd2u?qq|vcvtt?ps2u?qq|vcvtu?qq2p|vcvtt?[ps][sd]2usi|vcvtusi2|vcvtudq2p|vcvtt?p[sd]2udq|"
    r"vbroadcast[fi](?:32|64)x|vinsert[fi](?:32|64)x|vextract[fi](?:32|64)x|valign[dq]|vdbpsadbw|"
    r"vpconflict|vplzcnt|vpmov(?:[sd]?[qdw][bwd]|u[sq]|m2|[bwdq]2m)|vreduce|vrange|vfpclass|kmov|kand|kor|kxor|"
    r"knot|kshift|kunpck|ktest|kortest|kadd)\b"
)
FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")


def avx512_functions(objdump, binary):
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-C", binary], check=True, capture_output=True,
                         text=True).stdout
    found, function = {}, "?"
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            function = m.group(1)
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        instruction = parts[-1]
        if REGISTER.search(instruction) or MNEMONIC.match(instruction):
            found[function] = found.get(function, 0) + 1
    return found


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    objdump, binaries = argv[1], argv[2:]
    bad = 0
    for binary in binaries:
        found = avx512_functions(objdump, binary)
        allowed = {f: n for f, n in found.items() if any(a in f for a in ALLOWED)}
        for function, n in sorted(found.items()):
            if function not in allowed:
                print(f"{binary}: {function}: {n} AVX-512 instructions outside the runtime-dispatched functions")
                bad += 1
        print(f"{binary}: AVX-512 only in {len(allowed)} runtime-dispatched functions "
              f"({sum(allowed.values())} instructions)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
