"""Build a strong-scaling report from run records.

    python -m reports.build RECORDS.jsonl [RECORDS.jsonl ...] --out DIR

Writes into DIR: figures (PNG + SVG), tables (CSV + markdown), report.md and index.html.
Reads records only: never imports torch, mpi4py or horovod. Exit status 2 when a record file
is missing or no record is usable; broken lines are reported on stderr and skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import fail
from bench.outputs import OutputPathError, check_output_dir, make_output_dir
from reports import analysis

PROG = "python -m reports.build"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", type=Path, help="JSON-lines record files (docs/records.md)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the report (created if needed)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_output_dir(args.out, "--out")  # created only once there is something to write
    except OutputPathError as err:
        return fail(str(err))

    # Read: a missing file is the caller's mistake; a broken line is reported and skipped.
    try:
        records, problems = analysis.load_measured(args.records)
    except FileNotFoundError as err:
        return fail(str(err))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not records:
        return fail("no valid records in " + ", ".join(map(str, args.records)))

    # Analyse: points, scaling, GPU comparison, warnings, provenance.
    rows = analysis.scaling_rows(records)
    summary, ratios = analysis.gpu_comparison(rows, analysis.gpu_baselines(records))
    warnings = analysis.point_warnings(rows)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)

    # Draw and write. Plotting is imported here so that loading and analysis stay light.
    from reports import cnn_vs_cuts, figures, render

    try:
        make_output_dir(args.out, "--out")
    except OutputPathError as err:
        return fail(str(err))

    names = figures.all_figures(rows, summary, ratios, args.out)
    tables = render.write_tables(args.out, rows, summary, ratios)
    entries = cnn_vs_cuts.entries_from_records(records)
    if entries:  # runs whose records carry the comparison with the cut-based selection
        cnn_vs_cuts.roc_figure(entries, args.out)
        names.append("roc")
        sizes = {e["image_size"] for e in entries}
        cnn_vs_cuts.write_tables(entries, args.out, image_size=sizes.pop() if len(sizes) == 1 else None)
    blocks = render.report_blocks(
        sources=args.records, figures=names, tables=tables, envs=analysis.environments(records),
        problems=problems, warnings=warnings, quick=any(r["preset"] == "quick" for r in records),
        physics=cnn_vs_cuts.report_table(entries) if entries else None)
    index = render.write_reports(args.out, blocks)

    print(f"{len(records)} records, {len(rows)} points; report: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
