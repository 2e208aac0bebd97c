"""`make bench`: every chapter's training time and metric against its target, and the loops side by side.

    python benchmarks/bench.py [--profiles quick full] [--chapters 01 05] [--rounds 7] [--no-loops | --loops-only]

Each chapter notebook is executed as a reader runs it (nbclient, a fresh kernel, in a temporary folder)
with ``MP_PROFILE`` set and ``MP_RECORD_FILE`` pointing at a file into which its ``mp.record`` calls write
each trained model's training seconds, metric, target and baseline. Then `benchmarks/loops.py` times
`mp.fit` against a plain DataLoader loop and a minimal loop. The results go to
``benchmarks/results/<machine>.json`` (``cpu`` or ``cuda-<gpu name>``); a run replaces the entries it
measured and keeps the others, so the full profile can be added one chapter at a time. The book's
Performance page is generated from the committed results files (`book/_ext/performance.py`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]  # this checkout's mpkit, not whichever is installed
import loops  # noqa: E402

import mpkit as mp  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict:
    """Where the numbers come from: the results file's key and a description a reader can compare with."""
    dev = mp.device()
    key = "cpu" if dev.type == "cpu" else re.sub(r"[^a-z0-9]+", "-", f"{dev.type} {torch.cuda.get_device_name(dev)}"
                                                                       .lower()).strip("-")
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    return {"key": key, "describe": mp.env.describe(), "cpu": cpu.group(1) if cpu else platform.processor(),
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "python": platform.python_version()}


def run_notebook(path: Path, profile: str, timeout: int) -> dict:
    """Execute one notebook in a temporary folder; its records, wall time, and the error if it failed."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        records = Path(tmp) / "records.jsonl"
        env = {"MP_PROFILE": profile, "MP_RECORD_FILE": str(records), "PYTHONPATH": str(ROOT)}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits this process's environment
        start, error = time.perf_counter(), ""
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
        except CellExecutionError as exc:
            error = str(exc).strip().splitlines()[-1][:300]
        except Exception as exc:  # a timeout or a dead kernel: record it, go on with the next chapter
            error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in records.read_text().splitlines()] if records.exists() else []
    return {"chapter": path.stem, "profile": profile, "notebook_seconds": round(wall, 1),
            "load_average": round(os.getloadavg()[0], 1),  # over the last minute: other work on the machine
            "status": "failed" if error else "passed", "error": error, "models": rows}


def merge(old: dict, new: dict) -> dict:
    """``old`` with the chapters, profiles and loop measurements that ``new`` measured replaced."""
    measured = {(c["chapter"], c["profile"]) for c in new["chapters"]}
    chapters = [c for c in old.get("chapters", []) if (c["chapter"], c["profile"]) not in measured] + new["chapters"]
    return {**old, **{k: v for k, v in new.items() if k != "chapters" and (k != "loops" or v)},
            "chapters": sorted(chapters, key=lambda c: (c["chapter"], c["profile"]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profiles", nargs="+", default=["quick"], choices=mp.env.PROFILES)
    ap.add_argument("--chapters", nargs="*", default=None, help="chapter numbers or stems (default: all)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds of the loop comparison")
    ap.add_argument("--no-loops", action="store_true", help="skip the loop comparison")
    ap.add_argument("--loops-only", action="store_true", help="only the loop comparison, no notebook")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per notebook cell")
    args = ap.parse_args(argv)
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if any(p.stem.startswith(c) for c in args.chapters)]
        if not paths:
            ap.error(f"no notebook matches {args.chapters}; the chapters are notebooks/NN_topic.ipynb")
    info = machine()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    new = {"machine": info, "date": datetime.date.today().isoformat(), "commit": commit.strip(), "chapters": []}
    for profile in [] if args.loops_only else args.profiles:
        for path in paths:
            row = run_notebook(path, profile, args.timeout)
            models = ", ".join(f"{m['model']} {m['value']:.4g} (target {m['target']:.4g}, {'met' if m['met'] else 'MISSED'}"
                               f", {m['seconds']:.1f} s)" for m in row["models"]) or "no mp.record"
            print(f"{profile:5s} {path.stem:32s} {row['notebook_seconds']:7.1f} s  {row['status']}  {models}"
                  + (f"\n      {row['error']}" if row["error"] else ""), flush=True)
            new["chapters"].append(row)
    new["loops"] = [] if args.no_loops else loops.measure(mp.device(), args.rounds)
    for row in new["loops"]:
        print(f"{row['model']} ({row['device']}): mp.fit is {row['fit_vs_dataloader']['median']:.2f}x the DataLoader "
              f"loop's speed and {row['fit_vs_minimal']['median']:.2f}x the minimal loop's "
              f"(medians of {row['fit_vs_minimal']['rounds']} interleaved rounds)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{info['key']}.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps(merge(old, new), indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    bad = [r["chapter"] for r in new["chapters"] if r["status"] == "failed" or not r["models"]
           or not all(m["met"] for m in r["models"])]
    if bad:
        print(f"failed, missed a target or recorded no model: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
