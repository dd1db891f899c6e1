"""The CNN against the cut-based selection, drawn: the ROC figure and the tables from bench.evaluate's entries.

    python -m reports.physics --model-weights results/model.pt [more.pt ...] [--data FILE.h5] [--out DIR]
    mpirun -np N python -m reports.physics ...          (the scoring is shared over the ranks)

Takes every flag of ``python -m bench.evaluate`` (which scores the saved models on their test split and
compares them with the cuts) and writes into ``--out``: ``roc.png`` / ``roc.svg`` (one curve per model file, the
cut-based point marked), ``physics.md`` and ``physics.csv`` (one row per model, the study's row last) and
``physics.json`` (everything, ROC and cut flow included), and prints the table and the first model's cut flow.
The method is in docs/evaluate.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

from bench import evaluate
from data.errors import fail
from data.files import WriteError
from reports import cnn_vs_cuts as figs

PROG = "python -m reports.physics"


def render(entries: list[dict], out: Path) -> None:
    """Draw and write the figure and tables of ``entries`` (``bench.evaluate.Evaluation.entries``) into the
    existing directory ``out``, each file whole or not at all, and print them. Raises data.files.WriteError."""
    sizes = {e["image_size"] for e in entries}
    figs.roc_figure(entries, out)
    figs.write_tables(entries, out, image_size=sizes.pop() if len(sizes) == 1 else None)
    evaluate.write_entries(entries, out)
    print((out / "physics.md").read_text())
    first = entries[0]
    print(f"cut flow on the {first['split']} of {first['data'].get('path', first['data'].get('kind'))}:")
    print(figs.cut_flow_table(first["cut_flow"]))
    evaluate.summarize(entries)
    print(f"written: {out / 'roc.png'}, {out / 'physics.md'}, {out / 'physics.csv'}, {out / 'physics.json'}")


def main(argv: list[str] | None = None) -> int:
    ev = evaluate.run_evaluation(argv, prog=PROG, description=__doc__.split("\n\n")[0])
    if ev.code == 0 and ev.is_root and ev.entries:
        try:
            render(ev.entries, ev.out)
        except WriteError as exc:  # rank 0 alone writes, after the last collective
            return fail(str(exc))
    return ev.code


if __name__ == "__main__":
    sys.exit(main())
