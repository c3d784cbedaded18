"""Hypothesis profiles for the whole suite: `ci` (deterministic) and `dev` (random, with a local example database).

`ci` is loaded when the environment variable CI is true (CI runners set CI=true) or HYPOTHESIS_PROFILE=ci
(`.ci/run` exports it); otherwise `dev`. HYPOTHESIS_PROFILE=dev forces `dev`, and pytest's
`--hypothesis-profile NAME` still overrides both.

Every `settings(...)` object inherits the fields it does not set from the profile loaded when it is created.
This file is imported before any test module, so the per-test `@settings(max_examples=..., deadline=...)`
decorators keep the profile's derandomize and database; `pytest_collection_modifyitems` below refuses a CI
run in which some test would still draw random examples.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, settings

_TRUE = {"1", "true", "yes", "on"}

# Both profiles derive from Hypothesis' own defaults, never from whatever profile is active now: Hypothesis
# itself loads a built-in "ci" profile at import whenever a CI variable is set, which would otherwise leak
# derandomize/database into `dev` (and make HYPOTHESIS_PROFILE=ci differ from CI=true).
_BASE = settings.get_profile("default")
settings.register_profile(
    "ci",
    parent=_BASE,
    derandomize=True,  # the examples are a function of the test alone: the same on every run and machine
    database=None,  # no example database carried between runs
    deadline=None,  # no per-example time limit (a slow or loaded runner must not fail a test)
    print_blob=True,  # a failure prints the blob that reproduces it
    # the one wall-clock health check (data generation "too slow") must not fail a loaded runner either
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", parent=_BASE, deadline=None, print_blob=True)


def selected_profile(environ: Mapping[str, str] = os.environ) -> str:
    """`ci` when HYPOTHESIS_PROFILE=ci or CI is true; `dev` otherwise (also when HYPOTHESIS_PROFILE=dev)."""
    requested = environ.get("HYPOTHESIS_PROFILE", "").strip().lower()
    if requested in ("ci", "dev"):
        return requested
    return "ci" if environ.get("CI", "").strip().lower() in _TRUE else "dev"


settings.load_profile(selected_profile())


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {settings.get_current_profile_name()}"


@pytest.hookimpl(trylast=True)  # after -k / -m deselection
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `ci`, every Hypothesis test must run derandomized without an example database."""
    if not settings.default.derandomize:
        return
    random_tests = []
    for item in items:
        test = getattr(item, "obj", None)
        if not getattr(test, "is_hypothesis_test", False):
            continue
        effective = getattr(test, "_hypothesis_internal_use_settings", settings.default)
        if not effective.derandomize or effective.database is not None:
            random_tests.append(item.nodeid)
    if random_tests:
        raise pytest.UsageError(
            "these Hypothesis tests override the ci profile and would run random examples: " + ", ".join(random_tests)
        )
