#!/usr/bin/env bash
# Each precision against its own limit (issue 21, "machines differ"): the
# peak of the instruction each precision's kernels are built on, measured
# next to the fp32 FMA peak of bench/run.sh, and the arithmetic rate of
# graft's ResNet-18/50 inference (batch 32) in fp32, bf16 and int8 as a share
# of it; then which oneDNN kernels ran (ONEDNN_VERBOSE=1: the ISA in each
# convolution's implementation name, avx512_core_amx against
# avx512_core_bf16 / avx512_core_vnni).
#   peaks (graft_bench peak --isa ...; REPEATS runs each, median):
#     avx512 / avx2     fp32 FMA chains (2 FLOPs a lane)
#     avx512_bf16       vdpbf16ps chains (4 FLOPs a lane: 2 bf16 products)
#     avx512_vnni       vpdpbusd chains (8 integer ops a lane: 4 u8*s8 products)
#     amx_bf16/amx_int8 AMX tile dot products (where the CPU has AMX; none of
#                       this project's machines so far had it: then n/a)
#   [REPEATS=3] [THREADS=nproc] bash bench/peaks.sh
# Writes the "peaks" section of bench/RESULTS.md. OPENBLAS_CORETYPE /
# OPENBLAS_L2_SIZE are unset for the measurement only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh graft_bench >/dev/null
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-$(nproc)}
GB=./build/graft_bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq "$REPEATS"); do
  for isa in avx512 avx512_bf16 avx512_vnni amx_bf16 amx_int8; do
    echo "peak $isa $("$GB" --threads "$THREADS" peak --isa "$isa")" >> "$tmp/raw"
  done
  for net in resnet18:3 resnet50:2; do
    n=${net%%:*} steps=${net#*:}
    for p in fp32 bf16 int8; do
      echo "infer $n $p $("$GB" --threads "$THREADS" infer --backbone "$n" --batch-size 32 --steps "$steps" \
        --precision "$p")" >> "$tmp/raw"
    done
  done
done
# One pass each with oneDNN's verbose log: the kernels the convolutions ran.
for p in fp32 bf16 int8; do
  ONEDNN_VERBOSE=1 "$GB" --threads "$THREADS" infer --backbone resnet18 --batch-size 1 --steps 1 --precision "$p" \
    2>&1 | grep '^onednn_verbose,exec,cpu,convolution' > "$tmp/verbose-$p" || true
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
flags=$(grep -o -m1 -w 'avx512f\|avx512_bf16\|avx512_vnni\|amx_bf16\|amx_int8\|amx_tile' /proc/cpuinfo | sort -u |
  tr '\n' ' ')
/usr/bin/python3 - "$tmp" "$REPEATS" "$THREADS" "$load_before" "$load_after" "$cpu" "$flags" > "$tmp/section.md" <<'EOF'
import collections, json, statistics, sys
tmp, repeats, threads, before, after, cpu, flags = sys.argv[1:]
peaks, why, rates, macs = collections.defaultdict(list), {}, collections.defaultdict(list), {}
for line in open(f"{tmp}/raw"):
    kind, rest = line.split(" ", 1)
    if kind == "peak":
        isa, js = rest.split(" ", 1)
        j = json.loads(js)
        if j["rate"] is None:
            why[isa] = j["why"]
        else:
            peaks[isa].append(j["rate"])
    else:
        net, p, js = rest.split(" ", 2)
        j = json.loads(js)
        rates[(net, p)].append(j["rate"])
        macs[net] = j["macs_per_image"]
peak = {k: statistics.median(v) for k, v in peaks.items()}
def fmt_peak(isa, unit):
    return f"{peak[isa]:.0f} {unit}" if isa in peak else f"n/a ({why.get(isa, 'not measured')})"
out = ["<!-- peaks:begin -->", "## Each precision against its own limit (issue 21)", "",
       f"`bash bench/peaks.sh` (REPEATS={repeats}, THREADS={threads}; {cpu}; flags: {flags.strip()}; "
       f"load average {before} before, {after} after; OPENBLAS_CORETYPE/L2_SIZE unset). Peaks: `graft_bench peak "
       "--isa ...`, independent chains of one instruction on registers, all threads at once, median of the runs. "
       "A multiply-add counts 2 operations in every row.", "",
       "| instruction | peak | used by |", "|---|---|---|",
       f"| fp32 FMA (AVX-512 vfmadd) | {fmt_peak('avx512', 'GFLOP/s')} | fp32 convolutions and GEMMs |",
       f"| bf16 dot product (AVX512-BF16 vdpbf16ps) | {fmt_peak('avx512_bf16', 'GFLOP/s')} | bf16 autocast, "
       "without AMX |",
       f"| int8 dot product (AVX512-VNNI vpdpbusd) | {fmt_peak('avx512_vnni', 'GOP/s')} | int8, without AMX |",
       f"| AMX bf16 tiles (tdpbf16ps) | {fmt_peak('amx_bf16', 'GFLOP/s')} | bf16 with AMX |",
       f"| AMX int8 tiles (tdpbusd) | {fmt_peak('amx_int8', 'GOP/s')} | int8 with AMX |", ""]
own = {"fp32": "avx512", "bf16": "amx_bf16" if "amx_bf16" in peak else "avx512_bf16",
       "int8": "amx_int8" if "amx_int8" in peak else "avx512_vnni"}
out += ["graft's inference at batch 32, 224×224 (`graft_bench infer`, channels-last, BatchNorm folded; MACs "
        "counted from the ATen calls of a real pass), as a share of its precision's own peak:", "",
        "| network | GMAC / image | precision | img/s | G(FL)OP/s | own peak | share |", "|---|---|---|---|---|---|---|"]
for net in ("resnet18", "resnet50"):
    for p in ("fp32", "bf16", "int8"):
        r = statistics.median(rates[(net, p)])
        g = r * macs[net] * 2 / 1e9
        isa = own[p]
        share = f"{100 * g / peak[isa]:.0f}%" if isa in peak else "n/a"
        out.append(f"| {net} | {macs[net] / 1e9:.2f} | {p} | {r:.1f} | {g:.0f} | {isa} | {share} |")
out += ["", "oneDNN's kernels for ResNet-18's convolutions (`ONEDNN_VERBOSE=1 graft_bench infer --batch-size 1 "
        "--steps 1`: its MAC-counting pass, warm-up and timed pass, so a convolution shows more than once; the "
        "implementation name holds the ISA; int8 counts only the convolutions with uint8/int8 sources, not its "
        "float calibration pass):", ""]
tags = {"fp32": ("src_f32",), "bf16": ("src_bf16",), "int8": ("src_u8", "src_s8")}
for p in ("fp32", "bf16", "int8"):
    # int8's log also holds its fp32 calibration pass: only the convolutions
    # whose source has the precision's type count.
    impls = collections.Counter(line.split(",")[4] for line in open(f"{tmp}/verbose-{p}")
                                if line.count(",") > 4 and any(t in line for t in tags[p]))
    seen = ", ".join(f"{k} ×{v}" for k, v in impls.most_common()) or "none logged"
    out.append(f"- {p}: {seen}")
amx = any("amx" in line for p in ("bf16", "int8") for line in open(f"{tmp}/verbose-{p}"))
out += ["", "AMX kernels ran: " + ("yes." if amx else "no (this CPU has no AMX; the AMX probe is compiled and gated "
        "on the amx_* flags but has not run on a machine with AMX yet)."), "<!-- peaks:end -->"]
print("\n".join(out))
EOF
/usr/bin/python3 bench/section.py bench/RESULTS.md peaks "$tmp/section.md"
cat "$tmp/section.md"
