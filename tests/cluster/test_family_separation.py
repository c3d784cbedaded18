"""The template families are what clustering can find: each family is tighter in GED than its gap to any other."""

from __future__ import annotations

import itertools

import pytest

from streamtune_cli.ged import graph_edit_distance
from streamtune_cli.history.templates import FAMILIES, family_separation, family_variants


@pytest.fixture(scope="module")
def table() -> dict:
    return family_separation()


def test_every_family_has_structural_variants(table: dict) -> None:
    assert sorted(table) == sorted(f.name for f in FAMILIES)
    assert all(row["dags"] >= 2 for row in table.values()), table


def test_family_diameter_is_smaller_than_the_gap_to_other_families(table: dict) -> None:
    for name, row in table.items():
        assert row["gap"] > row["diameter"], (name, row)


def test_separation_table_agrees_with_pairwise_distances(table: dict) -> None:
    # Cross-check the table on two families by brute force, both orders of each pair.
    variants = family_variants()
    chain, diamond = variants["chain"], variants["diamond"]
    assert table["chain"]["dags"] == len(chain)
    between = [graph_edit_distance(a, b).lower for a in chain for b in diamond]
    between += [graph_edit_distance(b, a).lower for a in chain for b in diamond]
    assert table["chain"]["gap"] <= min(between)
    within = [graph_edit_distance(a, b).upper for a, b in itertools.permutations(diamond, 2)]
    assert table["diamond"]["diameter"] == max(within)
