#!/usr/bin/env python3
"""The kill -9 soak (issue 20, debt 5); bench/kill_soak.sh runs it.

Usage: kill_soak.py GRAFT WORKDIR KILLS SEED SUMMARY_MD [TRIAL]

Small `graft train` runs (an image run: ResNet-20, full fine-tuning, on 3
Fashion-MNIST classes; every fourth chain on average a text run: BERT-tiny
from scratch on 240 SST-2 sentences) are killed with SIGKILL after a random
delay, drawn uniformly from the start of the process to 1.1 times the length
of an uninterrupted run of the same kind (so kills land during start-up,
epochs, checkpoint writes, model saves, calibration, the test pass and the
report). Half the chains hold every atomic write 100 ms between writing its
temporary and renaming it (GRAFT_FAULT_WRITE_DELAY_MS, the fault tests' hook)
so that more kills land inside a write; the other half run as shipped.

A chain is one run folder: a fresh run, killed; with probability 1/2 its
--resume is killed again (at most 4 kills a chain); then an uninterrupted
--resume (or a fresh start when the kill came before config.json) finishes
it. After every kill the folder is checked:
  - model: model.safetensors never without model.json; when present, `graft
    eval RUN --data TEST` loads the run and succeeds;
  - checkpoint: checkpoint/last.safetensors, when present, is a complete
    safetensors file (header parses, data as long as the header says) whose
    trainer state's epochs_done matches metrics.csv (rows = done or done + 1);
  - what the kill interrupted: the temporaries left (".NAME.tmpNNN", see
    write_file_atomic and remove_stale_temporaries in src/core/files.cpp).
After the chain's last process: exit 0, no temporaries left, and
model.safetensors and test_predictions.csv byte-identical to those of an
uninterrupted run with the same seed.

Every draw comes from random.Random("SEED:chain"), so `kill_soak.sh` with
SOAK_SEED=SEED SOAK_CHAIN=N replays chain N's task, write delay and kill delays
(where a delay lands still depends on the machine's speed at the time).
"""
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time

graft, work, kills_wanted, seed, summary_path = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                                 int(sys.argv[4]), sys.argv[5])
only_chain = int(sys.argv[6]) if len(sys.argv) > 6 else None
WRITE_DELAY_MS = 100


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


TASKS = {
    "image": {
        "fresh": ["train", "--data", f"{work}/data/image/train", "--val-split", "0.2",
                  "--test", f"{work}/data/image/test", "--backbone", "resnet20",
                  "--strategy", "full", "--epochs", "5", "--batch-size", "8",
                  "--threads", "1", "--workers", "1", "--seed", "3", "--quiet", "--overwrite"],
        "eval": ["--data", f"{work}/data/image/test", "--threads", "1"],
    },
    "text": {
        "fresh": ["train", "--task", "text", "--backbone", "bert-tiny", "--weights", "none",
                  "--vocab", f"{work}/data/text/vocab.txt", "--data", f"{work}/data/text/train.tsv",
                  "--val-split", "0.2", "--test", f"{work}/data/text/test.tsv", "--epochs", "4",
                  "--batch-size", "16", "--max-length", "32", "--threads", "1", "--seed", "3",
                  "--quiet", "--overwrite"],
        "eval": ["--data", f"{work}/data/text/test.tsv", "--threads", "1"],
    },
}
tasks = [t for t in TASKS if os.path.exists(f"{work}/data/{t}")]
RESUME = ["train", "--resume", "--threads", "1", "--workers", "1", "--quiet"]


def env_for(write_delay):
    env = dict(os.environ)
    env.pop("GRAFT_FAULT_WRITE_DELAY_MS", None)
    if write_delay:
        env["GRAFT_FAULT_WRITE_DELAY_MS"] = str(write_delay)
    return env


def start(task, run, write_delay, log):
    fresh = not os.path.exists(f"{run}/config.json")
    args = (TASKS[task]["fresh"] if fresh else RESUME) + ["--out", run]
    return fresh, subprocess.Popen([graft] + args, stdout=log, stderr=log, env=env_for(write_delay))


def temporaries(run):
    found = []
    for d in (run, f"{run}/checkpoint"):
        if os.path.isdir(d):
            for n in os.listdir(d):
                if n.startswith(".") and ".tmp" in n:
                    found.append(n[1:n.rfind(".tmp")])
    return sorted(found)


def checkpoint_state(run):
    """None without a checkpoint, else (ok, epochs_done, why)."""
    path = f"{run}/checkpoint/last.safetensors"
    if not os.path.exists(path):
        return None
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return False, None, "shorter than its header length"
        n = struct.unpack("<Q", head)[0]
        if n > size - 8:
            return False, None, "header longer than the file"
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            return False, None, f"header does not parse: {e}"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        return False, None, f"data {size - 8 - n} bytes, header says {end}"
    try:
        done = json.loads(header["__metadata__"]["graft_trainer_state"])["epochs_done"]
    except (KeyError, ValueError) as e:
        return False, None, f"no trainer state: {e}"
    if os.path.exists(f"{run}/metrics.csv"):
        rows = open(f"{run}/metrics.csv").read().count("\n") - 1
        if rows not in (done, done + 1):
            return False, done, f"metrics.csv has {rows} rows, checkpoint after {done} epochs"
    return True, done, ""


def check_model(task, run):
    """'none', 'json only', 'loadable' or a failure text."""
    has_w, has_j = os.path.exists(f"{run}/model.safetensors"), os.path.exists(f"{run}/model.json")
    if has_w and not has_j:
        return "FAIL: model.safetensors without model.json"
    if not has_w:
        return "json only" if has_j else "none"
    r = subprocess.run([graft, "eval", run] + TASKS[task]["eval"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"FAIL: graft eval exited {r.returncode}: {r.stderr.strip()[-300:]}"
    json.loads(r.stdout)
    return "loadable"


def run_to_end(task, run, write_delay, logpath):
    with open(logpath, "a") as log:
        t0 = time.monotonic()
        fresh, p = start(task, run, write_delay, log)
        rc = p.wait()
    return rc, time.monotonic() - t0, fresh


# References: an uninterrupted run of each task, with and without the write
# delay (their outputs must agree: the delay only stretches the writes).
ref = {}
for task in tasks:
    for wd in (0, WRITE_DELAY_MS):
        run = f"{work}/ref-{task}-{wd}"
        shutil.rmtree(run, ignore_errors=True)
        rc, secs, _ = run_to_end(task, run, wd, f"{work}/ref-{task}-{wd}.log")
        if rc != 0:
            sys.exit(f"reference run {run} failed (rc {rc}): see {work}/ref-{task}-{wd}.log")
        out = (sha(f"{run}/model.safetensors"), sha(f"{run}/test_predictions.csv"))
        if task in ref and ref[task]["out"] != out:
            sys.exit(f"the {task} reference runs differ with and without the write delay")
        ref.setdefault(task, {"out": out})[wd] = secs
        print(f"reference {task} (write delay {wd} ms): {secs:.1f} s, model sha256 {out[0][:16]}",
              flush=True)

by_task = {t: 0 for t in tasks}
stats = dict(kills=0, in_write=0, resumed_killed=0, loadable=0, json_only=0, no_model=0,
             ckpt=0, ckpt_ok=0, no_ckpt=0, chains=0, finished=0, identical=0, ended_first=0)
phases, writes, failures = {}, {}, []
chain = 0
while stats["kills"] < kills_wanted if only_chain is None else chain <= only_chain:
    rng = random.Random(f"{seed}:{chain}")
    task = "text" if "text" in tasks and rng.random() < 0.25 else "image"
    wd = rng.choice([0, WRITE_DELAY_MS])
    if only_chain is not None and chain != only_chain:
        chain += 1
        continue
    run, logpath = f"{work}/chain{chain}", f"{work}/chain{chain}.log"
    shutil.rmtree(run, ignore_errors=True)
    open(logpath, "w").close()
    stats["chains"] += 1
    chain_failed = False
    for k in range(4):
        delay = rng.uniform(0, 1.1 * ref[task][wd])
        with open(logpath, "a") as log:
            fresh, p = start(task, run, wd, log)
            try:
                p.wait(timeout=delay)
                ended = True
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.wait()
                ended = False
        if ended:  # the process finished (or failed) before its kill
            stats["ended_first"] += 1
            if p.returncode != 0:
                failures.append(f"chain {chain} ({task}): the process before kill {k + 1} exited "
                                f"{p.returncode} (log {logpath})")
                chain_failed = True
            break
        stats["kills"] += 1
        by_task[task] += 1
        stats["resumed_killed"] += 0 if fresh else 1
        tmps = temporaries(run)
        if tmps:
            stats["in_write"] += 1
            for t in tmps:
                writes[t] = writes.get(t, 0) + 1
        model = check_model(task, run)
        ck = checkpoint_state(run)
        if model == "loadable":
            stats["loadable"] += 1
        elif model == "json only":
            stats["json_only"] += 1
        elif model == "none":
            stats["no_model"] += 1
        if ck is None:
            stats["no_ckpt"] += 1
        else:
            stats["ckpt"] += 1
            stats["ckpt_ok"] += 1 if ck[0] else 0
        if not os.path.exists(f"{run}/config.json"):
            phase = "before config.json"
        elif ck is None:
            phase = "before the first checkpoint"
        elif os.path.exists(f"{run}/test_metrics.json") or ck[1] >= int(
                TASKS[task]["fresh"][TASKS[task]["fresh"].index("--epochs") + 1]):
            phase = "after the last epoch's checkpoint"
        else:
            phase = f"after epoch {ck[1]}'s checkpoint"
        phases[phase] = phases.get(phase, 0) + 1
        line = (f"kill {stats['kills']}: chain {chain} {task} write-delay {wd} ms, "
                f"{'fresh' if fresh else 'resumed'} process killed at {delay * 1000:.0f} ms; "
                f"{phase}; in write of {','.join(tmps) or '-'}; model {model}; checkpoint "
                f"{'none' if ck is None else ('ok, ' + str(ck[1]) + ' epochs') if ck[0] else 'FAIL: ' + ck[2]}")
        print(line, flush=True)
        if model.startswith("FAIL") or (ck is not None and not ck[0]):
            failures.append(f"SOAK_SEED={seed} SOAK_CHAIN={chain}: {line}")
            keep = f"{work}/failed-chain{chain}-kill{k + 1}"
            shutil.copytree(run, keep, dirs_exist_ok=True)
            chain_failed = True
        if rng.random() < 0.5 or stats["kills"] >= kills_wanted and only_chain is None:
            break
    # The uninterrupted end of the chain (unless its last process already ended).
    if not ended:
        rc, _, _ = run_to_end(task, run, wd, logpath)
        if rc != 0:
            failures.append(f"SOAK_SEED={seed} SOAK_CHAIN={chain}: the final --resume exited {rc} "
                            f"(log {logpath})")
            chain_failed = True
    if p.returncode == 0 or not ended:
        if os.path.exists(f"{run}/test_predictions.csv") and os.path.exists(f"{run}/model.safetensors"):
            stats["finished"] += 1
            left = temporaries(run)
            got = (sha(f"{run}/model.safetensors"), sha(f"{run}/test_predictions.csv"))
            if got == ref[task]["out"] and not left:
                stats["identical"] += 1
            else:
                failures.append(f"SOAK_SEED={seed} SOAK_CHAIN={chain}: finished run differs from the "
                                f"reference (model {'same' if got[0] == ref[task]['out'][0] else 'differs'}, "
                                f"predictions {'same' if got[1] == ref[task]['out'][1] else 'differ'}, "
                                f"temporaries left {left})")
                chain_failed = True
    print(f"chain {chain}: {'FAILED' if chain_failed else 'ok'}", flush=True)
    if chain_failed:
        shutil.copytree(run, f"{work}/failed-chain{chain}-end", dirs_exist_ok=True)
    shutil.rmtree(run, ignore_errors=True)
    chain += 1

def phase_order(p):
    if p == "before config.json":
        return -2
    if p == "before the first checkpoint":
        return -1
    return 99 if "last" in p else int(p.split()[2].rstrip("'s"))


s = stats
summary = {"seed": seed, **s, "by_task": by_task, "phases": phases, "writes": writes, "failures": failures,
           "reference_seconds": {t: {str(k): round(v, 1) for k, v in ref[t].items() if k != "out"}
                                 for t in ref}}
json.dump(summary, open(f"{work}/summary.json", "w"), indent=1)
with open(summary_path, "w") as f:
    f.write(f"- kills: {s['kills']} SIGKILLs (" + ", ".join(f"{v} of {k} runs" for k, v in by_task.items()) +
            f") in {s['chains']} chains ({s['resumed_killed']} of them "
            f"of a resumed process); {s['ended_first']} processes ended before their drawn kill time\n")
    f.write(f"- when: " + ", ".join(f"{phases[k]} {k}" for k in sorted(phases, key=phase_order))
            + "\n")
    f.write(f"- during a write (a temporary left behind): {s['in_write']} of {s['kills']} — "
            + (", ".join(f"{k} {v}" for k, v in sorted(writes.items(), key=lambda x: -x[1])) or "none")
            + "\n")
    f.write(f"- model after the kill: {s['loadable']} loadable (`graft eval` succeeded), "
            f"{s['json_only']} model.json only (weights not yet written), {s['no_model']} no model; "
            f"{s['kills'] - s['loadable'] - s['json_only'] - s['no_model']} unloadable\n")
    f.write(f"- checkpoint after the kill: {s['ckpt_ok']} of {s['ckpt']} present consistent "
            f"(complete file, epochs_done matching metrics.csv), {s['no_ckpt']} kills before the first\n")
    f.write(f"- chains finished by an uninterrupted `--resume` (a fresh start where no config.json was "
            f"written yet): {s['finished']} of {s['chains']}, "
            f"{s['identical']} bit-identical (model.safetensors and test_predictions.csv) to the "
            f"uninterrupted reference, no temporaries left\n")
    f.write(f"- failures: {len(failures)}" + "".join(f"\n  - {x}" for x in failures) + "\n")
print(open(summary_path).read())
sys.exit(1 if failures else 0)
