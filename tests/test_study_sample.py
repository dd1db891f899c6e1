"""Spec (data/generation/study.py; docs/data.md, 'The study sample'): the study sample is one command that
runs the generator with a fixed recipe. Stopped after any committed chunk and continued, or run with
another number of workers, it makes the same chunks bit for bit (the file's order of chunks may differ
after a stop, their contents do not); run on a finished file it changes nothing; continued with
another seed it is refused; bad flags exit 2 naming the flag before anything is written. Checked with a
tiny recipe of the same shape."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from data.generation import study

TINY = {"signal_events": 8, "background_events": 24, "image_size": 16, "seed": 5, "chunk": 4}


EVENT = ("sample", "gen_weight", "njet", "nb", "ht", "mj", "lead_jet_pt")


def _chunks(path):
    """(sample, chunk) -> the chunk's pixels, event fields, jets and bookkeeping, as bytes."""
    out = {}
    with h5py.File(path, "r") as f:
        n = int(f.attrs["committed_events"])
        rows = [(int(a), int(b), int(c), int(g), float(x)) for a, b, c, g, x in zip(
            f["chunks/sample"], f["chunks/chunk"], f["chunks/event_stop"], f["chunks/n_generated"],
            f["chunks/sigma_pb"]) if c <= n]
        start = 0
        ev_off, jet_off = f["events/offsets"][:], f["jets/offsets"][:]
        for sample, chunk, stop, ngen, sigma in sorted(rows, key=lambda r: r[2]):
            p0, p1, j0, j1 = ev_off[start], ev_off[stop], jet_off[start], jet_off[stop]
            out[sample, chunk] = (ngen, sigma, f["pixels/index"][p0:p1].tobytes(),
                                  f["pixels/value"][p0:p1].tobytes(), np.diff(ev_off[start:stop + 1]).tobytes(),
                                  *(f["events"][k][start:stop].tobytes() for k in EVENT),
                                  *(f["jets"][k][j0:j1].tobytes() for k in ("pt", "eta", "phi", "btag", "btag_eff")))
            start = stop
    return out


def _stop_after(path, rows):
    """The file as a run killed after its first ``rows`` committed chunks leaves it."""
    with h5py.File(path, "a") as f:
        f.attrs["committed_events"] = int(f["chunks/event_stop"][rows - 1])


@pytest.mark.slow  # runs the event generator's worker processes
def test_the_sample_is_remade_bit_for_bit_in_two_goes_and_with_other_workers(tmp_path, capsys):
    one = tmp_path / "one.h5"
    assert study.main(["--out", str(one), "--workers", "2"], recipe=TINY) == 0
    out = capsys.readouterr().out
    assert "32 events committed" in out and "--split 0.55,0.1,0.35" in out and "qcd_pthat_800_1100" in out
    two = tmp_path / "sub" / "two.h5"  # the folder is made
    assert study.main(["--out", str(two), "--workers", "1"], recipe=TINY) == 0
    assert _chunks(one) == _chunks(two)  # another number of workers
    for rows in (3, 5):  # stopped mid-way (in the middle of a round of samples, then again), continued
        _stop_after(two, rows)
        assert study.main(["--out", str(two), "--workers", "1"], recipe=TINY) == 0
    a, b = _chunks(one), _chunks(two)
    assert len(a) == 9 and a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    before = one.read_bytes()
    capsys.readouterr()
    assert study.main(["--out", str(one)], recipe=TINY) == 0
    assert "nothing to do" in capsys.readouterr().out and one.read_bytes() == before
    with pytest.raises(SystemExit) as exc:
        study.main(["--out", str(one)], recipe=dict(TINY, seed=6))
    assert exc.value.code == 2 and "--seed" in capsys.readouterr().err


@pytest.mark.parametrize("flags, flag", [(["--workers", "0"], "--workers"), (["--workers", "two"], "--workers")])
def test_bad_flags_exit_2_naming_the_flag(flags, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        study.main(["--out", str(tmp_path / "s.h5"), *flags], recipe=TINY)
    assert exc.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "s.h5").exists()


def test_an_out_that_cannot_be_a_file_exits_2(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    for out in (tmp_path, tmp_path / "plain" / "s.h5"):
        with pytest.raises(SystemExit) as exc:
            study.main(["--out", str(out)], recipe=TINY)
        assert exc.value.code == 2 and "--out" in capsys.readouterr().err
    assert (tmp_path / "plain").read_text() == "x"


def test_the_recipe_is_the_documented_one():
    assert study.RECIPE == {"signal_events": 100_000, "background_events": 100_000, "image_size": 64,
                            "seed": 31, "chunk": 500}
    argv = study.generate_argv(study.RECIPE, "x.h5", 2)
    assert argv[argv.index("--seed") + 1] == "31" and argv[argv.index("--path") + 1] == "fast"
