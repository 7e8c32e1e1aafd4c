"""Turn pytest-benchmark JSON into the Markdown tables of BENCHMARKS.md.

    python benchmarks/report.py .benchmarks/last.json [.benchmarks/dense-avx2.json ...] > BENCHMARKS.md

One row per benchmark group, one column per implementation (native, numpy, torch: read from
the ``backend`` parameter, else from the test id), the median time of each, and the ratios
of the others to native measured in the same run.

The dense families of bench_dense.py (the rows whose extra_info has a ``family``) get their
own tables, one per family: native, NumPy twin, PyTorch and the GEMM floor (``gemm``), the
ratios native / gemm floor, native / twin and torch / native, and the GFLOP/s of native and
of the floor where the benchmark recorded its ``flops``.  Each JSON file is one run at one CPU
level of the kernels (``extra_info["level"]``); with several files the dense tables get a
level column and a table of the native times at each level.
"""
import json
import platform
import re
import sys

IMPLS = ("native", "numpy", "torch")
DENSE_IMPLS = IMPLS + ("gemm",)
LEVELS = ("avx512", "avx2", "baseline")   # best first
SLOW = 1.15   # native / floor or native / twin above this is marked


def implementation(bench):
    params = bench.get("params") or {}
    for key in ("backend", "impl"):
        if params.get(key) in IMPLS:
            return params[key]
    if (bench.get("extra_info") or {}).get("backend") in IMPLS:
        return bench["extra_info"]["backend"]
    found = [impl for impl in IMPLS if re.search(rf"\b{impl}\b", bench["name"])]
    return found[0] if found else None


def fmt(seconds):
    if seconds is None:
        return "–"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def dense(bench):
    return "family" in (bench.get("extra_info") or {})


def table(data):
    groups, peaks = {}, {}
    for bench in data["benchmarks"]:
        if dense(bench):
            continue
        impl = implementation(bench)
        if impl is not None:
            group = bench.get("group") or bench["name"]
            groups.setdefault(group, {})[impl] = bench["stats"]["median"]
            if "peak_rss_mb" in bench.get("extra_info", {}):
                peaks.setdefault(group, {})[impl] = bench["extra_info"]["peak_rss_mb"]
    if not groups:
        return ""
    lines = ["| workload | native | numpy twin | torch | twin / native | torch / native |",
             "|---|---|---|---|---|---|"]
    for group, times in groups.items():
        native = times.get("native")
        ratios = [f"{times[k] / native:.2f}×" if native and k in times else "–" for k in ("numpy", "torch")]
        lines.append(f"| {group} | {fmt(native)} | {fmt(times.get('numpy'))} | "
                     f"{fmt(times.get('torch'))} | {ratios[0]} | {ratios[1]} |")
    if peaks:
        lines += ["", "Peak memory (RSS of the whole process):", "",
                  "| workload | native | numpy twin | torch |", "|---|---|---|---|"]
        for group, mb in peaks.items():
            cells = [f"{mb[k]:.0f} MB" if k in mb else "–" for k in IMPLS]
            lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# the dense families

def run_level(data):
    """The CPU level of the kernels in this run (the dense rows record it), else "?"."""
    levels = {b["extra_info"]["level"] for b in data["benchmarks"] if dense(b) and "level" in b["extra_info"]}
    return "/".join(sorted(levels)) if levels else "?"


def ratio(a, b, mark=False):
    if a is None or b is None:
        return "–"
    text = f"{a / b:.2f}×"
    return f"**{text}**" if mark and a / b > SLOW else text


def gflops(flops, seconds):
    return f"{flops / seconds / 1e9:.1f}" if flops and seconds else "–"


def dense_rows(runs):
    """{family: {(workload, level): {"times": {impl: median}, "flops": n}}}, in run order."""
    families = {}
    for level, data in runs:
        for bench in data["benchmarks"]:
            extra = bench.get("extra_info") or {}
            if not dense(bench) or extra.get("impl") not in DENSE_IMPLS:
                continue
            for family in extra.get("families") or [extra["family"]]:
                row = families.setdefault(family, {}).setdefault(
                    (extra["workload"], extra.get("level", level)),
                    {"times": {}, "flops": None, "evaluations": {}})
                row["times"][extra["impl"]] = bench["stats"]["median"]
                if "evaluations" in extra:
                    row["evaluations"][extra["impl"]] = extra["evaluations"]
                row["flops"] = extra.get("flops", row["flops"])
    return families


def _level_order(level):
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def dense_tables(runs):
    families = dense_rows(runs)
    if not families:
        return ""
    levels = sorted({level for rows in families.values() for _, level in rows}, key=_level_order)
    several = len(levels) > 1
    out = ["", "## Dense nets on dense data (bench_dense.py)", "",
           "One epoch on N(0, 1) random features (float32, 2 threads, stats off); *gemm floor*: "
           "only the NumPy matrix products of that epoch on the same batches (each layer's "
           "forward, weight gradient and input gradient, none for the first layer's input), "
           "nothing else; L-BFGS: one full-batch evaluation per iteration; inference: the "
           "forward products. native / gemm and native / twin above "
           f"{SLOW:.2f}× are in bold (native slower); torch / native above 1 means native is "
           "faster. GFLOP/s: the floor's products (2mnk each, no bias) over the time, for the "
           "nets with layers of 100 units or more.", ""]
    for level, data in runs:
        cores = {}
        for bench in data["benchmarks"]:
            if dense(bench):
                cores.update(bench["extra_info"].get("openblas_cores") or {})
        if cores:
            torch = {b["extra_info"]["torch"] for b in data["benchmarks"]
                     if dense(b) and "torch" in b["extra_info"]}
            out.append(f"* {data.get('_path', '?')}: kernels at CPU level **{level}**, OpenBLAS core "
                       "type " + ", ".join(f"{k} {v}" for k, v in sorted(cores.items()))
                       + (f", PyTorch {', '.join(sorted(torch))}" if torch else ", no PyTorch rows")
                       + f" ({data.get('datetime', '?')})")
    head = ["workload"] + (["level"] if several else []) + [
        "native", "numpy twin", "torch", "gemm floor", "native / gemm", "native / twin",
        "torch / native", "native GFLOP/s", "gemm GFLOP/s"]
    for family, rows in families.items():
        out += ["", f"### {family}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        order = list(dict.fromkeys(workload for workload, _ in rows))
        notes = []
        for workload in order:
            for level in levels:
                row = rows.get((workload, level))
                if row is None:
                    continue
                t = row["times"]
                native, gemm = t.get("native"), t.get("gemm")
                cells = [workload] + ([level] if several else []) + [
                    fmt(native), fmt(t.get("numpy")), fmt(t.get("torch")), fmt(gemm),
                    ratio(native, gemm, mark=True), ratio(native, t.get("numpy"), mark=True),
                    ratio(t.get("torch"), native), gflops(row["flops"], native),
                    gflops(row["flops"], gemm)]
                out.append("| " + " | ".join(cells) + " |")
                if row["evaluations"]:
                    notes.append(f"{workload}" + (f" ({level})" if several else "") + ": "
                                 + ", ".join(f"{k} {v}" for k, v in row["evaluations"].items())
                                 + " function evaluations (the floor counts one an iteration)")
        out += [""] + [f"* {note}" for note in notes] if notes else []
    if several:
        best = levels[0]
        head = ["workload"] + [f"native {level}" for level in levels] + [
            f"{level} / {best}" for level in levels[1:]]
        out += ["", "### native time at each CPU level", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        seen = {}
        for rows in families.values():
            for (workload, level), row in rows.items():
                seen.setdefault(workload, {})[level] = row["times"].get("native")
        for workload, times in seen.items():
            cells = [workload] + [fmt(times.get(level)) for level in levels] + [
                ratio(times.get(level), times.get(best)) for level in levels[1:]]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(paths):
    runs = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        data["_path"] = path
        runs.append((run_level(data), data))
    data = runs[0][1]
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {}).get("brand_raw", platform.processor())
    print("# Benchmarks\n")
    print(f"Generated by `make bench` (pytest-benchmark {data.get('version')}, {data.get('datetime')}),")
    print(f"then `python benchmarks/report.py {' '.join(paths)}`. Machine: {cpu}, "
          f"{info.get('cpu', {}).get('count', '?')} logical CPUs, Python {info.get('python_version')}; "
          "2 threads; median times.\n")
    # the other benchmarks: from every file (normally only the first, the whole suite, has
    # them), tagged with the level when runs at several levels hold some
    levels = {level for level, d in runs if any(not dense(b) for b in d["benchmarks"])}
    benches = []
    for level, d in runs:
        for bench in d["benchmarks"]:
            if not dense(bench) and len(levels) > 1:
                bench = dict(bench, group=f"{bench.get('group') or bench['name']} [{level}]")
            benches.append(bench)
    print(table({"benchmarks": benches}))
    print(dense_tables(runs))


if __name__ == "__main__":
    main(sys.argv[1:] or [".benchmarks/last.json"])
