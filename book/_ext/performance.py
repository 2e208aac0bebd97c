"""Sphinx extension: the Performance page is generated from the committed ``benchmarks/results/*.json``.

``book/performance.md`` holds the marker ``<!-- performance-results -->``; at build time it is replaced by
MyST tables: per chapter and trained model, the metric reached against its target and the training time,
in the quick profile (CPU) and the full profile (a GPU where a results file from one exists, else the
CPU), each figure with the machine it came from; then the training loops side by side. `make bench`
(``benchmarks/bench.py``) writes the results files.
"""
from __future__ import annotations

import json
from pathlib import Path

MARKER = "<!-- performance-results -->"


def load(folder: Path) -> list[dict]:
    """Every results file in ``folder``, in the order `load_from` gives."""
    return load_from([json.loads(p.read_text(encoding="utf-8")) | {"path": p} for p in sorted(folder.glob("*.json"))])


def load_from(results: list[dict]) -> list[dict]:
    """GPU results first, so that the full profile's column prefers a GPU's figure to the CPU's."""
    return sorted(results, key=lambda r: r["machine"]["key"] == "cpu")


def _cell(model: dict | None, where: str) -> str:
    if model is None:
        return "not run"
    mark = "✓" if model["met"] else "✗ missed"
    return f"{model['value']:.4g} (target {model['target']:.4g}) {mark}, {model['seconds']:.1f} s on {where}"


def _short(machine: dict) -> str:
    return "CPU" if machine["key"] == "cpu" else machine["key"].split("-", 1)[1].upper()


def chapter_table(results: list[dict]) -> list[str]:
    """One row per (chapter, model): baseline, quick and full figures, each naming its machine."""
    found: dict[tuple[str, str], dict] = {}
    for res in results:
        for ch in res["chapters"]:
            for m in ch["models"]:
                row = found.setdefault((ch["chapter"], m["model"]), {"metric": m["metric"], "baseline": None})
                row["baseline"] = row["baseline"] if row["baseline"] is not None else m.get("baseline")
                row.setdefault(ch["profile"], (m, _short(res["machine"])))
    failed = [(ch["chapter"], ch["profile"], ch["error"] or "it recorded no model (mp.record)")
              for res in results for ch in res["chapters"] if ch["error"] or not ch["models"]]
    notebook = {(ch["chapter"], ch["profile"]): ch.get("notebook_seconds")
                for res in results[::-1] for ch in res["chapters"]}
    load = {ch["chapter"]: f", load {ch['load_average']:g}" for res in results for ch in res["chapters"]
            if ch["profile"] == "quick" and ch.get("load_average", 0) > 1.5}
    out = ["| Chapter (whole notebook, quick) | Model | Metric | Baseline | Quick profile | Full profile |",
           "|---|---|---|---|---|---|"]
    previous = None
    for (stem, model), row in sorted(found.items()):
        base = "—" if row["baseline"] is None else f"{row['baseline']:.4g}"
        seconds = notebook.get((stem, "quick"))
        chapter = "" if stem == previous else f"{{doc}}`../notebooks/{stem}`" + (
            f" ({seconds:.0f} s{load.get(stem, '')})" if seconds else "")
        previous = stem
        out.append(f"| {chapter} | {model} | {row['metric']} | {base} | "
                   f"{_cell(*row.get('quick', (None, '')))} | {_cell(*row.get('full', (None, '')))} |")
    out += [""] + [f"- {stem} ({profile}): `{error}`" for stem, profile, error in failed]
    return out


def loop_table(results: list[dict]) -> list[str]:
    """`mp.fit` against the DataLoader and minimal loops (and amp, compile on a GPU), per machine."""
    out = ["| Machine | Model | mp.fit ÷ DataLoader loop | mp.fit ÷ minimal loop | bf16 autocast | torch.compile |",
           "|---|---|---|---|---|---|"]
    for res in results:
        for row in res.get("loops", []):
            def fmt(key):
                r = row.get(key)
                return "—" if r is None else f"{r['median']:.2f}× ({r['min']:.2f}–{r['max']:.2f})"
            out.append(f"| {_short(res['machine'])} | {row['model']} | {fmt('fit_vs_dataloader')} | "
                       f"{fmt('fit_vs_minimal')} | {fmt('amp_vs_fp32')} | {fmt('compiled_vs_eager')} |")
    return out


def markdown(results: list[dict]) -> str:
    if not results:
        return "No results are committed yet: run `make bench`."
    machines = [f"- **{_short(r['machine'])}**: {r['machine']['describe'].split(' | profile')[0]}, "
                f"{r['machine'].get('cpu', '')}, {r['machine']['cpu_count']} CPU cores, "
                f"OMP_NUM_THREADS={r['machine']['omp_num_threads']}; measured {r['date']} at commit "
                f"`{r['commit']}` (`benchmarks/results/{r['path'].name}`)" for r in results]
    return "\n".join(["## Machines", "", *machines, "", "## Each chapter's models against their targets", "",
                      *chapter_table(results), "", "## Training loops side by side", "",
                      "Speed of `mp.fit` relative to the other loop (above 1: `mp.fit` is faster): median over "
                      "interleaved rounds, with the range.", "", *loop_table(results)])


def _source_read(app, docname, source):
    if MARKER in source[0]:
        folder = Path(app.srcdir) / "benchmarks" / "results"
        for path in folder.glob("*.json"):
            app.env.note_dependency(str(path))
        source[0] = source[0].replace(MARKER, markdown(load(folder)))


def setup(app):
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
