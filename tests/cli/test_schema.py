"""`streamtune schema`: the JSON Schema of job specs, generated from the models, accepts every shipped spec
and what `show --format json` prints, and rejects what the loader rejects.

The `jsonschema` package is used when installed; otherwise a small validator below checks the keywords the
generated schema uses (and fails on any other, so it can never pass a schema it does not understand).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from streamtune_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p for folder in ("nexmark", "synthetic") for p in (ROOT / "configs" / folder).glob("*.yaml"))
runner = CliRunner()

# Keywords that only annotate: they never make an instance invalid.
_ANNOTATIONS = {"title", "description", "default", "$schema", "$id", "examples", "$defs", "discriminator"}
_NUMERIC = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
_STRING = {"minLength", "maxLength", "pattern"}
_ARRAY = {"items", "minItems", "maxItems", "uniqueItems"}
_OBJECT = {"properties", "required", "additionalProperties"}


def _errors(instance: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """Every violation of `schema` by `instance` (empty: valid), for the keywords pydantic generates."""
    errors: list[str] = []
    is_number = isinstance(instance, (int, float)) and not isinstance(instance, bool)
    # "type" first: the other keywords assume it. As in JSON Schema, a keyword about numbers, strings,
    # arrays or objects says nothing about an instance of another type.
    for keyword, value in sorted(schema.items(), key=lambda item: item[0] != "type"):
        if keyword in _ANNOTATIONS:
            continue
        if keyword in _NUMERIC and not is_number or keyword in _STRING and not isinstance(instance, str):
            continue
        if keyword in _ARRAY and not isinstance(instance, list) or keyword in _OBJECT and not isinstance(instance, dict):
            continue
        if keyword == "$ref":
            assert value.startswith("#/$defs/"), value
            errors += _errors(instance, root["$defs"][value.removeprefix("#/$defs/")], root, where)
        elif keyword == "type":
            kinds = {"object": dict, "array": list, "string": str, "null": type(None), "boolean": bool}
            if value == "integer":
                ok = isinstance(instance, int) and not isinstance(instance, bool)
            elif value == "number":
                ok = isinstance(instance, (int, float)) and not isinstance(instance, bool) and math.isfinite(instance)
            else:
                ok = isinstance(instance, kinds[value])
            if not ok:
                errors.append(f"{where}: expected {value}, got {instance!r}")
                return errors  # the other keywords assume the type
        elif keyword == "properties":
            for name, sub in value.items():
                if isinstance(instance, dict) and name in instance:
                    errors += _errors(instance[name], sub, root, f"{where}.{name}")
        elif keyword == "required":
            errors += [f"{where}: missing {name!r}" for name in value if name not in instance]
        elif keyword == "additionalProperties":
            extra = set(instance) - set(schema.get("properties", {}))
            if value is False:
                errors += [f"{where}: unknown field {name!r}" for name in sorted(extra)]
            else:
                for name in extra:
                    errors += _errors(instance[name], value, root, f"{where}.{name}")
        elif keyword == "items":
            for i, item in enumerate(instance):
                errors += _errors(item, value, root, f"{where}[{i}]")
        elif keyword in ("anyOf", "oneOf"):
            matches = sum(not _errors(instance, sub, root, where) for sub in value)
            if matches == 0 or (keyword == "oneOf" and matches > 1):
                errors.append(f"{where}: {instance!r} matches {matches} of the {keyword} alternatives")
        elif keyword == "enum":
            if instance not in value:
                errors.append(f"{where}: {instance!r} not in {value}")
        elif keyword == "const":
            if instance != value:
                errors.append(f"{where}: {instance!r} is not {value!r}")
        elif keyword == "minimum":
            errors += [f"{where}: {instance} < {value}"] if instance < value else []
        elif keyword == "maximum":
            errors += [f"{where}: {instance} > {value}"] if instance > value else []
        elif keyword == "exclusiveMinimum":
            errors += [f"{where}: {instance} <= {value}"] if instance <= value else []
        elif keyword == "exclusiveMaximum":
            errors += [f"{where}: {instance} >= {value}"] if instance >= value else []
        elif keyword == "minLength":
            errors += [f"{where}: shorter than {value}"] if len(instance) < value else []
        elif keyword == "maxLength":
            errors += [f"{where}: longer than {value}"] if len(instance) > value else []
        elif keyword == "minItems":
            errors += [f"{where}: fewer than {value} items"] if len(instance) < value else []
        elif keyword == "maxItems":
            errors += [f"{where}: more than {value} items"] if len(instance) > value else []
        elif keyword == "uniqueItems":
            errors += [f"{where}: repeated items"] if value and len({json.dumps(i) for i in instance}) < len(instance) else []
        elif keyword == "pattern":
            errors += [f"{where}: {instance!r} does not match {value}"] if not re.search(value, instance) else []
        else:
            raise AssertionError(f"the test validator does not know the keyword {keyword!r}: extend it")
    return errors


def validation_errors(instance: Any, schema: dict[str, Any]) -> list[str]:
    try:
        import jsonschema
    except ImportError:
        return _errors(instance, schema, schema)
    return [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(instance)]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_schema_names_its_dialect_and_version(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:streamtune:spec:1"
    assert {"name", "workload", "operators", "edges"} <= set(schema["properties"])
    # YAML spells edges with `from` and `to` (the models' aliases): so must the schema.
    assert {"from", "to"} <= set(schema["$defs"]["Edge"]["properties"])


@pytest.mark.parametrize("path", SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_spec_is_valid(schema: dict[str, Any], path: Path) -> None:
    assert validation_errors(yaml.safe_load(path.read_text()), schema) == []


@pytest.mark.parametrize("path", SPECS[:3], ids=lambda p: p.name)
def test_show_json_without_its_extras_is_a_valid_spec(schema: dict[str, Any], path: Path) -> None:
    shown = json.loads(runner.invoke(app, ["show", str(path), "--format", "json"]).stdout)
    assert shown.pop("schema") == "streamtune.spec/1" and shown.pop("topological_order")
    assert validation_errors(shown, schema) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["operators"][0].update(cost_us=-1.0), "cost_us"),
        (lambda d: d["operators"][0].update(costus=1.0), "costus"),
        (lambda d: d["operators"][0].update(kind="teleport"), "teleport"),
        (lambda d: d["edges"][0].update(partitioning="random"), "random"),
        (lambda d: d["edges"][0].pop("from"), "from"),
        (lambda d: d["workload"].update(rate_rps="fast"), "fast"),
        (lambda d: d["operators"][0].update(parallelism=0), "0"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(schema: dict[str, Any], change: Any, expected: str, tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs/nexmark/q5.yaml").read_text())
    change(data)
    errors = validation_errors(data, schema)
    assert errors and any(expected in e for e in errors), errors
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert runner.invoke(app, ["validate", "--no-sql", str(path)]).exit_code == 2
