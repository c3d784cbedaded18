"""The fusion tests share fuse_specgen (hypothesis strategies); with --import-mode=importlib a test module
cannot import a sibling module unless its folder is on sys.path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
