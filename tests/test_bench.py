"""make bench's plumbing: merging results, the Performance page's tables, every chapter recording its models."""
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "book" / "_ext")]
import bench  # noqa: E402
import performance  # noqa: E402


def _model(name, value, target, met, seconds=2.0, baseline=None):
    return {"model": name, "metric": "test accuracy", "value": value, "target": target, "met": met,
            "seconds": seconds, "baseline": baseline, "higher_is_better": True}


def _results(key, chapters, loops=()):
    return {"machine": {"key": key, "describe": "torch x | device y", "cpu": "Some CPU", "cpu_count": 2,
                        "omp_num_threads": "1"}, "date": "2026-12-01", "commit": "abc1234",
            "chapters": chapters, "loops": list(loops), "path": Path(f"{key}.json")}


def test_merge_replaces_only_what_was_measured():
    old = {"chapters": [{"chapter": "01_a", "profile": "quick", "v": 1}, {"chapter": "01_a", "profile": "full", "v": 1},
                        {"chapter": "02_b", "profile": "quick", "v": 1}], "loops": [{"old": True}]}
    new = {"chapters": [{"chapter": "01_a", "profile": "full", "v": 2}], "loops": [], "date": "now"}
    merged = bench.merge(old, new)
    assert [(c["chapter"], c["profile"], c["v"]) for c in merged["chapters"]] == [
        ("01_a", "full", 2), ("01_a", "quick", 1), ("02_b", "quick", 1)]
    assert merged["loops"] == [{"old": True}] and merged["date"] == "now"   # --no-loops keeps the last loop figures


def test_performance_page_shows_each_figure_with_its_machine_and_marks_misses():
    cpu = _results("cpu", [{"chapter": "01_nn", "profile": "quick", "error": "", "notebook_seconds": 31.4, "models": [
        _model("MLP", 0.961, 0.95, True, baseline=0.1)]}, {"chapter": "02_cnn", "profile": "quick",
        "error": "AssertionError: accuracy", "models": [_model("CNN", 0.80, 0.9, False)]},
        {"chapter": "03_unet", "profile": "quick", "error": "", "models": []}],
        loops=[{"model": "MLP", "fit_vs_dataloader": {"median": 1.38, "min": 1.3, "max": 1.6},
                "fit_vs_minimal": {"median": 0.97, "min": 0.93, "max": 1.01}}])
    gpu = _results("cuda-nvidia-h100", [{"chapter": "01_nn", "profile": "full", "error": "", "models": [
        _model("MLP", 0.985, 0.97, True, seconds=4.0)]}])
    text = performance.markdown(performance.load_from([cpu, gpu]))
    row = next(line for line in text.splitlines() if "| MLP |" in line and "01_nn" in line)
    assert "0.961 (target 0.95) ✓, 2.0 s on CPU" in row and "0.985 (target 0.97) ✓, 4.0 s on NVIDIA-H100" in row
    assert "| 0.1 |" in row and "01_nn` (31 s)" in row
    cnn = next(line for line in text.splitlines() if "| CNN |" in line)
    assert "✗ missed" in cnn and cnn.endswith("not run |")
    assert "02_cnn (quick): `AssertionError: accuracy`" in text and "03_unet (quick): `it recorded no model" in text
    assert "1.38× (1.30–1.60)" in text and "0.97× (0.93–1.01)" in text


def test_every_chapter_records_its_trained_models():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert re.search(r"\bmp\.record\(", code), f"{path.name}: no mp.record(...) beside its model's target"


def test_committed_results_cover_every_chapter_in_the_quick_profile():
    results = json.loads((ROOT / "benchmarks" / "results" / "cpu.json").read_text())
    measured = {c["chapter"] for c in results["chapters"] if c["profile"] == "quick"}
    chapters = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert chapters <= measured, f"run make bench: no quick-profile result for {sorted(chapters - measured)}"
    assert results["loops"], "run make bench: no loop comparison in benchmarks/results/cpu.json"
    for row in results["loops"]:
        assert row["fit_vs_minimal"]["median"] >= 0.95, f"{row['model']}: mp.fit is slower than 0.95x the minimal loop"
