"""Output paths checked before any work: a path that cannot be written exits 2 naming its flag, before a
single event is read or a step trained, and nothing already written is touched. Torch-free.

The checks live in data/files.py (the bottom layer, so that the data tools use them too); this module is
the harness's name for them.
"""
from data.files import OutputPathError, check_output_dir, check_output_file, make_output_dir

__all__ = ["OutputPathError", "check_output_dir", "check_output_file", "make_output_dir"]
