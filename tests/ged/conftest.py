"""The GED tests share ged_graphgen (graph builders and hypothesis strategies); with
--import-mode=importlib a test module cannot import a sibling unless its folder is on sys.path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
