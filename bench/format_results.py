#!/usr/bin/env python3
"""Writes the main table of bench/RESULTS.md from the measurements that
bench/run.sh collected in TMP (raw: "KEY rate peak_rss_kib" per repeat;
macs: "NETWORK macs_per_image"; acc_fp32.json / acc_bf16.json).
Usage: format_results.py TMP   (REPEATS, THREADS, load_before, load_after
from the environment)."""
import json
import os
import statistics
import subprocess
import sys

tmp = sys.argv[1]
env = os.environ
raw = {}
for line in open(os.path.join(tmp, "raw")):
    key, r, m = line.split()
    raw.setdefault(key, []).append((float(r), int(m)))
macs = {}
if os.path.exists(os.path.join(tmp, "macs")):
    for line in open(os.path.join(tmp, "macs")):
        net, m = line.split()
        macs[net] = int(m)


def rate(key):
    return statistics.median(r for r, _ in raw[key])


def rss(key):
    return max(m for _, m in raw[key]) // 1024


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()


cpu_model = next((l.split(":", 1)[1].strip() for l in sh("lscpu").splitlines()
                  if l.startswith("Model name")), "?")
flags = open("/proc/cpuinfo").read()
isa = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
                if f" {f} " in flags)
blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
torch_version = sh("/usr/bin/python3", "-c", "import torch; print(torch.__version__)")
threads = env.get("THREADS", "?")
peak = rate("peak/avx512")

out = []
p = out.append
p("# Benchmarks\n")
p(f"Written by `bash bench/run.sh` on {sh('date', '-u', '+%Y-%m-%d')} (REPEATS={env.get('REPEATS')}, "
  f"medians; {threads} threads on every side; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for the run; "
  f"load average {env.get('load_before')} before, {env.get('load_after')} after).\n")
p(f"Machine: {cpu_model}, {os.cpu_count()} cores; {isa}. BLAS: {blas}. "
  f"PyTorch and LibTorch {torch_version} (Debian), oneDNN 2.6.3; ATen's own kernels dispatch at "
  f"AVX2 unless ATEN_CPU_CAPABILITY says otherwise.\n")
p(f"Measured FMA peak (fp32 fused multiply-adds on registers, {threads} threads): "
  f"**{peak:.0f} GFLOP/s** with AVX-512, {rate('peak/avx2'):.0f} GFLOP/s with AVX2.\n")
p("**PyTorch default** is Debian's python3-torch as its tutorials run it: glibc's default "
  "malloc, default (contiguous) memory format. **PyTorch tuned** has the allocator fix that "
  "graft ships (glibc's mmap threshold raised: `MALLOC_MMAP_THRESHOLD_` and friends, the values "
  "of graft's mallopt) and, for CNNs, channels-last. graft runs as it does by default: "
  "channels-last, BatchNorm folded into the convolutions for evaluation, inference mode. "
  "Same model, batch, random input and thread count on every side. Ratios are graft / PyTorch "
  "(above 1: graft is faster), each with the min-max of its per-repeat ratios in brackets. "
  "Peak RSS is the largest single process (GNU time).\n")
p("| figure | graft | PyTorch default | PyTorch tuned | × default | × tuned | peak RSS MiB: graft / default / tuned |")
p("|---|---|---|---|---|---|---|")


def ratio(a, b):
    """The ratio of the medians, and the min-max of the per-repeat ratios (the
    repeats are interleaved, so repeat i of each side ran at about the same time)."""
    r = rate(a) / rate(b)
    rs = [x / y for (x, _), (y, _) in zip(raw[a], raw[b])]
    return f"{r:.2f} ({min(rs):.2f}-{max(rs):.2f})" if len(rs) > 1 else f"{r:.2f}"


def row(label, key, unit="img/s", latency=False):
    g, t, u = rate(key + "/graft"), rate(key + "/torch"), rate(key + "/tuned")
    mem = f"{rss(key + '/graft')} / {rss(key + '/torch')} / {rss(key + '/tuned')}"
    rt, ru = ratio(key + "/graft", key + "/torch"), ratio(key + "/graft", key + "/tuned")
    if latency:
        p(f"| {label} | {1000 / g:.1f} ms | {1000 / t:.1f} ms | {1000 / u:.1f} ms | {rt} | {ru} | {mem} |")
    else:
        p(f"| {label} | {g:.1f} {unit} | {t:.1f} | {u:.1f} | {rt} | {ru} | {mem} |")


for n in ("resnet18", "resnet50", "vgg16", "googlenet"):
    row(f"{n} inference, batch 32, 224²", f"infer_{n}")
for n in ("resnet18", "resnet50", "vgg16", "googlenet"):
    row(f"{n} latency, batch 1", f"infer_b1_{n}", latency=True)
row("resnet18 full fine-tune step (SGD), batch 32", "train_full")
row("resnet18 partial fine-tune step (layer4 + fc), batch 32", "train_partial")
row("BERT-mini fine-tune step (AdamW), batch 32, seq 128", "bert_train", "seq/s")
row("BERT-mini inference, batch 32, seq 128", "bert_infer", "seq/s")
if "loader_hymenoptera/graft" in raw:
    row("data pipeline: hymenoptera JPEGs decoded + augmented, 224²", "loader_hymenoptera")
    row("data pipeline: CIFAR-10 JPEGs decoded + augmented, 32²", "loader_cifar10")
p("")

if macs:
    p("Arithmetic rate of graft's inference (batch 32; 2 FLOPs per multiply-add; MACs counted "
      "from the ATen calls of a real forward pass), and PyTorch tuned's for comparison:\n")
    p("| network | GMAC / image | graft GFLOP/s | % of AVX-512 peak | PyTorch tuned GFLOP/s | % of peak |")
    p("|---|---|---|---|---|---|")
    for n, m in macs.items():
        g = rate(f"infer_{n}/graft") * m * 2 / 1e9
        u = rate(f"infer_{n}/tuned") * m * 2 / 1e9
        p(f"| {n} | {m / 1e9:.2f} | {g:.0f} | {100 * g / peak:.0f}% | {u:.0f} | {100 * u / peak:.0f}% |")
    p("")

p("What graft's defaults buy, ResNet-18 inference at batch 32 (graft alone):\n")
p("| graft variant | img/s | vs graft default |")
p("|---|---|---|")
base = rate("infer_resnet18/graft")
for key, label in (("infer_resnet18/graft_plain", "contiguous layout, BatchNorm not folded (`--plain`)"),
                   ("infer_resnet18/graft", "default: channels-last, BatchNorm folded"),
                   ("infer_resnet18/graft_avx512", "default with `ATEN_CPU_CAPABILITY=avx512`")):
    p(f"| {label} | {rate(key):.1f} | {rate(key) / base:.2f} |")
p("")

p("`--precision bf16` (CPU autocast to bfloat16 on AVX512-BF16; fp32 master weights), against "
  "graft fp32 and against PyTorch tuned with the same autocast:\n")
p("| figure | graft fp32 | graft bf16 | bf16 speed-up | PyTorch tuned bf16 | graft bf16 / PyTorch bf16 |")
p("|---|---|---|---|---|---|")
for key, label in (("infer_resnet18", "resnet18 inference, batch 32 (img/s)"),
                   ("train_full", "resnet18 full fine-tune step, batch 32 (img/s)"),
                   ("bert_train", "BERT-mini fine-tune step, batch 32, seq 128 (seq/s)"),
                   ("bert_infer", "BERT-mini inference, batch 32, seq 128 (seq/s)")):
    f, b, t = rate(key + "/graft"), rate(key + "/graft_bf16"), rate(key + "/tuned_bf16")
    p(f"| {label} | {f:.1f} | {b:.1f} | {b / f:.2f} | {t:.1f} | {b / t:.2f} |")
acc = {}
for prec in ("fp32", "bf16"):
    path = os.path.join(tmp, f"acc_{prec}.json")
    if os.path.exists(path):
        acc[prec] = json.load(open(path))["accuracy"]
if len(acc) == 2:
    p("")
    p(f"Accuracy effect: the published CIFAR-10 ResNet-20 (akamaster) on the 10,000 CIFAR-10 test "
      f"images, `graft eval --precision fp32`: {100 * acc['fp32']:.2f}%, `--precision bf16`: "
      f"{100 * acc['bf16']:.2f}% ({100 * (acc['bf16'] - acc['fp32']):+.2f} points).")
p("")

if "blas/pthread_train" in raw or "blas/reference_infer" in raw:
    p(f"Which BLAS (BERT-mini, batch 32, seq 128, graft with {threads} threads; the matrix "
      "products of the linear layers go through libblas.so.3):\n")
    p("| libblas.so.3 | fine-tune step seq/s | inference seq/s |")
    p("|---|---|---|")
    p(f"| OpenBLAS, OpenMP build (the setup's choice) | {rate('bert_train/graft'):.1f} | "
      f"{rate('bert_infer/graft'):.1f} |")
    if "blas/pthread_train" in raw:
        p(f"| OpenBLAS, pthread build | {rate('blas/pthread_train'):.1f} | "
          f"{rate('blas/pthread_infer'):.1f} |")
    if "blas/reference_infer" in raw:
        p(f"| reference BLAS (Debian libblas3) | | {rate('blas/reference_infer'):.1f} |")
    p("")

if "probe/cached" in raw:
    N = int(env.get("N_TRAIN", "244"))
    c, n, t = rate("probe/cached"), rate("probe/naive"), rate("probe/torch")
    p("Linear probe end to end (`graft train --strategy linear --epochs 20`, ResNet-18, "
      f"hymenoptera: {N} training images, the 153 validation images scored after every epoch on "
      f"every side, as torchvision's transfer-learning tutorial does; one run each; rate = {N} × 20 training images / wall "
      "time, start-up included). The cold cache computes the backbone's features once "
      "(train and validation), so against a loop that re-runs the backbone 20 times its "
      "speed-up is bounded by 20:\n")
    p("| recipe | seconds | images/s | feature cache speed-up |")
    p("|---|---|---|---|")
    p(f"| graft, feature cache (cold) | {N * 20 / c:.1f} | {c:.0f} | {c / n:.1f}× graft naive, {c / t:.1f}× PyTorch naive |")
    if "probe/warm" in raw:
        w = rate("probe/warm")
        p(f"| graft, feature cache warm (the same run again) | {N * 20 / w:.1f} | {w:.0f} | {w / n:.1f}× graft naive, {w / t:.1f}× PyTorch naive |")
    p(f"| graft `--no-feature-cache` (backbone re-run every epoch) | {N * 20 / n:.1f} | {n:.0f} | |")
    p(f"| PyTorch tuned, naive loop (tutorial's fixed feature extractor) | {N * 20 / t:.1f} | {t:.0f} | |")
    p("")
# The performance issue's targets, each with this run's figure.
p("Against the targets (this run's figures):\n")
def verdict(ok):
    return "met" if ok else "**not met**"
cnn = [rate(f"{k}/graft") / rate(f"{k}/tuned") for k in ("infer_resnet18", "train_full")]
bert = [rate(f"{k}/graft") / rate(f"{k}/tuned") for k in ("bert_train", "bert_infer")]
dflt = [rate(f"{k}/graft") / rate(f"{k}/torch") for k in ("infer_resnet18", "train_full", "bert_train", "bert_infer")]
p(f"- ≥ 1.2× the tuned PyTorch run, fp32: ResNet-18 {min(cnn):.2f}-{max(cnn):.2f}×, "
  f"BERT-mini {min(bert):.2f}-{max(bert):.2f}× — {verdict(min(cnn + bert) >= 1.2)}.")
p(f"- ≥ 4× PyTorch as users run it: {min(dflt):.2f}-{max(dflt):.2f}× — {verdict(min(dflt) >= 4)}.")
if macs:
    shares = {n: rate(f"infer_{n}/graft") * m * 2 / 1e9 / peak for n, m in macs.items()}
    p("- conv inference ≥ 75% of the measured peak: " +
      ", ".join(f"{n} {100 * v:.0f}%" for n, v in shares.items()) +
      f" — {verdict(min(shares.values()) >= 0.75)}.")
if "probe/cached" in raw:
    c, n = rate("probe/cached"), rate("probe/naive")
    w = rate("probe/warm") if "probe/warm" in raw else c
    p(f"- linear probe ≥ 20× the naive loop: {c / n:.1f}× with a cold cache, {w / n:.0f}× warm — "
      f"{verdict(c / n >= 20)} cold, {verdict(w / n >= 20)} warm.")
if "loader_hymenoptera/graft" in raw:
    lr = rate("loader_hymenoptera/graft") / rate("train_full/graft")
    p(f"- data pipeline ≥ 2× the fine-tune consumption: hymenoptera decoding + augmentation "
      f"{lr:.0f}× the full fine-tune step's images/s — {verdict(lr >= 2)}.")
keys = sorted({k.split("/")[0] for k in raw if k.endswith("/graft") and k.split("/")[0] + "/tuned" in raw})
over = [k for k in keys if rss(k + "/graft") > min(rss(k + "/torch"), rss(k + "/tuned"))]
p(f"- peak memory no higher than PyTorch's: {len(keys) - len(over)} of {len(keys)} figures"
  + (f"; higher in {', '.join(over)}" if over else "") + f" — {verdict(not over)}.")
p("")
p("What limits the fp32 ratios against tuned PyTorch: for the work that dominates, both sides "
  "call the same kernels — oneDNN's AVX-512 brgconv for convolutions (already at 75-98% of the "
  "measured FMA peak on both sides, table above) and OpenBLAS's sgemm for BERT's linear layers "
  "(see the profile below). graft's own gains are in the rest: BatchNorm folded into the "
  "convolutions (PyTorch tuned still spends its native_batch_norm share), dropout masks "
  "without ATen's single-threaded bernoulli_, BERT's query/key/value in one GEMM with the "
  "scale folded in, the attention's small products spread over the threads. These are worth "
  "a few to fifteen percent, which is the size of this machine's run-to-run noise (±10% "
  "between identical runs while this table was prepared; the repeats are interleaved so that "
  "a slow spell hits every side). A 1.2× fp32 lead over the same kernels would take fewer "
  "FLOPs, i.e. another recipe; `--precision bf16` is where the large speed-up is. "
  "The 4-7× of glibc's default malloc that the issue measured depends on how the kernel "
  "serves fresh mmaps; on this run's machine the default-allocator penalty is the × default "
  "column. The linear probe's cold-cache speed-up is bounded by the epoch count (20): the "
  "backbone runs once instead of 20 times.\n")
prof_path = os.path.join(tmp, "profile.json")
if os.path.exists(prof_path):
    prof = json.load(open(prof_path))
    p("Where the time goes (self CPU time per ATen operation, PyTorch tuned's profiler; graft "
      "calls the same ATen and oneDNN kernels, except that its BERT dropout is its own):\n")
    p("| recipe | top operations (% of self CPU time) |")
    p("|---|---|")
    for key, label in (("resnet18_infer", "ResNet-18 inference, batch 32, channels-last"),
                       ("bert_mini_train", "BERT-mini fine-tune step, batch 32, seq 128")):
        p(f"| {label} | " + ", ".join(f"{name} {share}%" for name, share in prof[key]) + " |")
    p("")
print("\n".join(out))
