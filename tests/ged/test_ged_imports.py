"""streamtune_cli.ged loads its parts on first use: assigning a job to a cluster never imports scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def loaded_after(code: str) -> set[str]:
    """Which of scipy/sklearn a fresh interpreter has imported after running `code`."""
    probe = code + "\nimport sys\nprint('LOADED=' + ','.join(m for m in ('scipy', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = out.strip().splitlines()[-1]
    assert line.startswith("LOADED="), out
    return set(filter(None, line[len("LOADED="):].split(",")))


def test_importing_the_package_imports_neither_scipy_nor_sklearn() -> None:
    assert loaded_after("import streamtune_cli.ged") == set()
    # the canonical hash (used by `history add` and `generate`) needs neither
    assert loaded_after("from streamtune_cli.ged import canonical_hash, EditCosts") == set()


def test_cluster_assign_does_not_import_sklearn() -> None:
    code = (
        "from streamtune_cli.cli.app import main\n"
        "try:\n"
        f"    main(['cluster', 'assign', {str(ROOT / 'configs/nexmark/q5.yaml')!r}, "
        f"'--clusters', {str(ROOT / 'sample_histories/clusters.json')!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
    )
    assert "sklearn" not in loaded_after(code)


def test_every_exported_name_resolves() -> None:
    import streamtune_cli.ged as ged

    assert sorted(ged.__all__) == sorted(ged._EXPORTS)  # every public name has a module to load it from
    for name in ged.__all__:
        assert getattr(ged, name) is not None, name
    assert "cluster_distance_matrix" in dir(ged)
