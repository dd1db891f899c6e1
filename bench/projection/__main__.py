"""``python -m bench.projection``: see bench/projection/cli.py."""
import sys

from bench.projection.cli import main

sys.exit(main())
