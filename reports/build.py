"""Build a strong-scaling report from run records.

    python -m reports.build RECORDS.jsonl [RECORDS.jsonl ...] --out DIR

Writes into DIR: figures (PNG + SVG), tables (CSV + markdown), report.md and index.html, each file whole
or not at all. A run given more than once (the same ``run_id``) counts once, with a warning; copies that
differ are an error naming both. Reads records only: never imports torch, mpi4py or horovod. Exit status 2
when a record file is missing or not a readable file, no record is usable, or a file of the report cannot
be written; broken lines are reported on stderr and skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data.errors import fail
from bench.outputs import OutputPathError, check_output_dir, make_output_dir
from bench.records import DuplicateRunError
from data.files import InputError, WriteError
from reports import analysis
from reports.frame import read_frame

PROG = "python -m reports.build"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", type=Path, help="JSON-lines record files (docs/records.md)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the report (created if needed)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # Read: a missing file is the caller's mistake; a broken line is reported and skipped. --out is checked
    # first and created only once the records are found, so a mistyped record path leaves no directory.
    try:
        check_output_dir(args.out, "--out")
        frame, problems = read_frame(args.records)
        make_output_dir(args.out, "--out")
    except (OutputPathError, InputError, DuplicateRunError) as err:
        return fail(str(err))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if frame.empty:
        return fail("no valid records in " + ", ".join(map(str, args.records)))

    # Analyse: points, scaling, GPU comparison, warnings, provenance (pandas, on the runs' frame).
    rows = analysis.scaling_rows(frame)
    summary, ratios = analysis.gpu_comparison(rows, analysis.gpu_baselines(frame))
    warnings = analysis.point_warnings(rows)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)

    try:
        index = draw_and_write(args, frame, problems, rows, summary, ratios, warnings)
    except WriteError as err:  # a full disk, a quota: each file written is whole, the one that failed as before
        return fail(str(err))
    print(f"{len(frame)} records, {len(rows)} points; report: {index}")
    return 0


def draw_and_write(args, frame, problems, rows, summary, ratios, warnings) -> Path:
    """The figures, tables, report.md and index.html of the analysed runs into ``args.out``; returns the
    path of index.html. Raises data.files.WriteError naming the first file that could not be written.
    Plotting is imported here so that loading and analysis stay light."""
    from reports import cnn_vs_cuts, figures, render, tables

    targets = analysis.time_to_target_points(frame)
    names = figures.all_figures(rows, summary, ratios, args.out, targets)
    views = tables.write_tables(args.out, rows, summary, ratios, targets)
    entries = cnn_vs_cuts.entries_from_frame(frame)
    if entries:  # runs whose records carry the comparison with the cut-based selection
        cnn_vs_cuts.roc_figure(entries, args.out)
        names.append("roc")
        sizes = {e["image_size"] for e in entries}
        cnn_vs_cuts.write_tables(entries, args.out, image_size=sizes.pop() if len(sizes) == 1 else None)
    blocks = render.report_blocks(
        sources=args.records, figures=names, tables=views, summary=tables.summary_table(rows, summary),
        environment=tables.environment_table(analysis.environments(frame)), problems=problems, warnings=warnings,
        quick=bool((frame["preset"] == "quick").any()),
        physics=cnn_vs_cuts.report_table(entries) if entries else None, projection=projected_crossover())
    return render.write_reports(args.out, blocks)


def projected_crossover() -> tuple[tuple, tuple] | None:
    """The KNL-against-one-GPU crossover and 1024-node ratio projected from published achieved rates
    (bench.projection.published, its fits applied; torch-free), as (columns, table) pairs for the report, and
    the model's coverage of the published points (``published.coverage``)."""
    import pandas as pd

    from bench.projection import profiles, published
    raw = profiles.load()
    prof = published.fitted(raw)
    crossover = pd.DataFrame(published.crossover_table(prof))
    ratio = pd.DataFrame(published.ratio_table(prof))
    if crossover.empty:
        return None
    cov = published.coverage(published.reproduce(raw))
    return ((tuple(crossover.columns), crossover.round(2)), (tuple(ratio.columns), ratio.round(2)), cov)


if __name__ == "__main__":
    sys.exit(main())
