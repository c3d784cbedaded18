"""Puts this folder on sys.path: with --import-mode=importlib a test module cannot otherwise import its
sibling `reference` (the polars reference results of the Nexmark jobs)."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
