"""Seeded fuzzing of every spec-taking command: mutated shipped specs get exit 0 or 2, a positioned one-line
error, and the same verdict from every command.

Each case starts from one of the shipped job specs (configs/**/*.yaml) and applies one to three mutations
drawn by `random.Random(seed)`: keys deleted, duplicated or retyped, numbers made huge, tiny, negative,
NaN or infinite, values nested hundreds deep, unicode and invalid UTF-8 bytes, truncation, YAML aliases
(duplicates, bombs, recursion, merges), and trace schedules pointing at good, broken or forbidden files.
Every case runs `validate`, `show`, `fuse`, `simulate` and `tune --executor sim --tuner ds2`: each must
accept (exit 0; `tune` may also exit 1, a job that does not keep up) or reject (exit 2) it, all alike.

The default is a fixed set of FUZZ_CASES cases (about a minute); a longer campaign:

    STREAMTUNE_FUZZ_CASES=2000 STREAMTUNE_FUZZ_SEED=1000 .venv/bin/python -m pytest tests/fuzz -q

Cases whose commands disagree only because SQL is checked by some commands and not others are marked
xfail, naming the SQL wiring (issue 15): they are listed, not hidden.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from typer.testing import CliRunner

from streamtune_cli.cli.app import app
from streamtune_cli.errors import SpecError
from streamtune_cli.spec import load_spec, models

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

FUZZ_CASES = int(os.environ.get("STREAMTUNE_FUZZ_CASES", "200"))
FUZZ_SEED = int(os.environ.get("STREAMTUNE_FUZZ_SEED", "0"))


def _job_specs() -> list[Path]:
    found = []
    for path in sorted(ROOT.glob("configs/**/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "operators" in data:
            found.append(path)
    return found


SPECS = _job_specs()

# --------------------------------------------------------------------------------------------------------
# The mutator. A case is the spec's text plus extra files beside it; data-level mutations work on the
# parsed document and dump it again, with RAW tokens standing for text that no YAML dumper writes.


class Case:
    def __init__(self, rng: random.Random, source: Path):
        self.rng = rng
        self.source = source
        self.data: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
        self.text: bytes | None = None  # set once a text-level mutation ran; data is then frozen
        self.raw: dict[str, str] = {}
        self.files: dict[str, bytes | str] = {}  # name -> content; "DIR" makes a folder; "->target" a symlink
        self.applied: list[str] = []

    def raw_token(self, text: str) -> str:
        token = f"RAWTOKEN{len(self.raw)}X"
        self.raw[token] = text
        return token

    def render(self) -> bytes:
        if self.text is not None:
            return self.text
        text = yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=1_000_000)
        for token, raw in self.raw.items():
            text = text.replace(f"'{token}'", raw).replace(token, raw)
        return text.encode("utf-8", "surrogatepass")

    def to_text(self) -> None:
        self.text = self.render()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in the document (not the root)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append(prefix + (key,))
            found += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.append(prefix + (index,))
            found += _paths(value, prefix + (index,))
    return found


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: tuple, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _pick(case: Case, accept: Callable[[Any], bool] = lambda v: True) -> tuple | None:
    candidates = [p for p in _paths(case.data) if accept(_get(case.data, p))]
    return case.rng.choice(candidates) if candidates else None


def m_delete_key(case: Case) -> None:
    path = _pick(case)
    if path is not None and isinstance(_get(case.data, path[:-1]), dict):
        del _get(case.data, path[:-1])[path[-1]]


def m_swap_type(case: Case) -> None:
    path = _pick(case)
    if path is not None:
        _set(case.data, path, case.rng.choice(["text", 7, -3, 0, True, None, [], {}, [1, 2], {"a": 1}, 3.5, "", "0x1F"]))


_NUMBERS = [
    "1e308", "-1e308", "1.0e308", "1.7976931348623157e308", "5e-324", "1.0e-320", "0", "-1", "-0.0", ".nan",
    ".inf", "-.inf", "1e999", "1" + "0" * 300, "-" + "1" * 300, "9" * 5000, "0.000001", "1e-12", "1e10", "1e4",
    "32768", "32769", "1e15", "0x7fffffff", "0o777", "1_000_000", "86400", "86401", "1e9", "1.0e10",
]


def m_number(case: Case) -> None:
    path = _pick(case, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
    if path is None:
        path = _pick(case)
    if path is not None:
        _set(case.data, path, case.raw_token(case.rng.choice(_NUMBERS)))


def m_extreme_workload(case: Case) -> None:
    """Values each inside their own bound whose product is not: the job-level demand rule's business."""
    workload = case.data.get("workload") if isinstance(case.data, dict) else None
    if isinstance(workload, dict):
        workload["rate_rps"] = case.rng.choice([1e10, 9.9e9, 1e-6, 1e6])
        workload["schedule"] = case.rng.choice(
            [
                {"kind": "step", "steps": [{"at_s": 0, "factor": 1000.0}, {"at_s": 1e9, "factor": 0.001}]},
                {"kind": "square", "period_s": 0.001, "low_factor": 0.001, "high_factor": 1000},
                {"kind": "sine", "period_s": 1e9, "amplitude": 0.999},
            ]
        )
    for op in case.data.get("operators", []) if isinstance(case.data, dict) else []:
        if isinstance(op, dict) and op.get("kind") not in ("sink", "source") and case.rng.random() < 0.7:
            op["selectivity"] = case.rng.choice([1e4, 1e3, 0.0])
        if isinstance(op, dict) and case.rng.random() < 0.3:
            op["cost_us"] = case.rng.choice([1e-3, 1e9])
        if isinstance(op, dict) and case.rng.random() < 0.2:
            op["max_parallelism"] = 32768
            op["parallelism"] = case.rng.choice([1, 32768])
    if isinstance(case.data, dict) and case.rng.random() < 0.5:
        case.data["restart_s"] = case.rng.choice([86400, 0])


def m_bounds(case: Case) -> None:
    """Numbers set to the ends of their documented ranges (docs/spec.md): valid, and the hardest for the
    sim, the fusion cost model and the tuners."""
    ends = {
        "cost_us": [models.MIN_COST_US, models.MAX_COST_US],
        "selectivity": [0.0, models.MAX_SELECTIVITY, 1e-9],
        "record_bytes": [0, models.MAX_RECORD_BYTES],
        "rate_share": [models.MIN_RATE_SHARE, models.MAX_RATE_SHARE],
        "rate_rps": [models.MIN_RATE_RPS, models.MAX_RATE_RPS],
        "restart_s": [0.0, models.MAX_RESTART_S],
        "size_s": [models.MIN_SECONDS, models.MAX_SECONDS],
        "slide_s": [models.MIN_SECONDS],
        "gap_s": [models.MIN_SECONDS, models.MAX_SECONDS],
        "period_s": [models.MIN_SECONDS, models.MAX_SECONDS],
        "factor": [models.MIN_RATE_FACTOR, models.MAX_RATE_FACTOR],
        "zipf_s": [0.0, 5.0],
        "keys": [1, models.MAX_SKEW_KEYS],
        "sigma": [0.0, 1.0],
        "kappa": [0.0, 1.0],
    }
    for path in _paths(case.data):
        if path[-1] in ends and case.rng.random() < 0.4:
            _set(case.data, path, case.rng.choice(ends[path[-1]]))
    for op in case.data.get("operators", []) if isinstance(case.data, dict) else []:
        if isinstance(op, dict) and case.rng.random() < 0.2:
            op["max_parallelism"] = models.MAX_PARALLELISM_BOUND
            op["parallelism"] = case.rng.choice([1, models.MAX_PARALLELISM_BOUND])
            for edge in case.data.get("edges", []):
                if isinstance(edge, dict) and op.get("id") in (edge.get("from"), edge.get("to")):
                    edge["partitioning"] = "rebalance"  # forward edges need equal parallelism
                    edge.pop("key", None)


def m_deep(case: Case) -> None:
    path = _pick(case)
    if path is None:
        return
    depth = case.rng.choice([30, 63, 64, 65, 200, 600, 3000])
    if case.rng.random() < 0.5:
        raw = "[" * depth + "1" + "]" * depth
    else:
        raw = "{a: " * depth + "1" + "}" * depth
    _set(case.data, path, case.raw_token(raw))


_UNICODE = ["é", "ß", "日本", "😀", "\u202e", "\u200b", "\u0301", "\u2028", "\x85", "\ufeff", "\x01", "\x7f", "\t", "'", '"', "\\"]


def m_unicode(case: Case) -> None:
    path = _pick(case, lambda v: isinstance(v, str))
    if path is not None:
        value = "".join(case.rng.choice(_UNICODE + ["a", "b", "_"]) for _ in range(case.rng.randint(1, 8)))
        _set(case.data, path, _get(case.data, path) + value)


def m_long_string(case: Case) -> None:
    path = _pick(case, lambda v: isinstance(v, str))
    if path is not None:
        _set(case.data, path, case.rng.choice(["x", "op_", "MOD(a, 1) = "]) * case.rng.choice([1000, 30_000]))


def m_duplicate_key(case: Case) -> None:
    case.to_text()
    lines = case.text.split(b"\n")
    keyed = [i for i, line in enumerate(lines) if re.match(rb"^\s*[A-Za-z_]+:", line)]
    if keyed:
        i = case.rng.choice(keyed)
        lines.insert(i + 1, lines[i])
        case.text = b"\n".join(lines)


def m_bytes(case: Case) -> None:
    case.to_text()
    at = case.rng.randrange(len(case.text) + 1)
    junk = case.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\x00", b"\x1b[31m", b"\r", b"\t"])
    case.text = case.text[:at] + junk + case.text[at:]


def m_truncate(case: Case) -> None:
    case.to_text()
    case.text = case.text[: case.rng.randrange(len(case.text) + 1)]


def m_alias(case: Case) -> None:
    case.to_text()
    text = case.text.decode("utf-8", "replace")
    choice = case.rng.randrange(5)
    if choice == 0:  # an operator entry repeated through an alias: a duplicate id
        text = text.replace("operators:\n- ", "operators:\n- &first ", 1)
        text = text.replace("\nedges:", "\n- *first\nedges:", 1)
    elif choice == 1:  # a bomb hung on the description
        bomb = "bomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\n"
        bomb += "".join(f"bomb{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]\n" for i in range(1, 8))
        text = bomb + text
    elif choice == 2:
        text = text.replace("workload:", "loop: &loop [1, *loop]\nworkload:", 1)
    elif choice == 3:  # a merge key building the last operator from the first
        text = text.replace("operators:\n- ", "operators:\n- &first ", 1)
        text = text.replace("\nedges:", "\n- <<: *first\n  id: merged_copy\nedges:", 1)
    else:
        text = text.replace("workload:", "workload: *nowhere\nworkload_:", 1)
    case.text = text.encode("utf-8", "surrogatepass")


_TRACES: dict[str, bytes | str] = {
    "good": "t_s,factor\n0,1.0\n300,2.5\n600,0.5\n",
    "huge": "t_s,factor\n0,1\n10,1e308\n",
    "garbage": b"t_s,factor\n0,1\n\xff\xfe,\x00\n",
    "words": "t_s,factor\nsecret,token\n" * 3,
    "empty": "",
    "backwards": "0,1\n10,1\n5,1\n",
    "many": "".join(f"{i},{1 + (i % 3)}\n" for i in range(30)) + "x,y\n" * 50,
}


def m_trace(case: Case) -> None:
    workload = case.data.get("workload") if isinstance(case.data, dict) else None
    if not isinstance(workload, dict):
        return
    kind = case.rng.choice(sorted(_TRACES) + ["dev_zero", "escape", "absolute", "missing", "folder", "link_out", "link_in"])
    name = "rates.csv"
    if kind in _TRACES:
        case.files[name] = _TRACES[kind]
    elif kind == "dev_zero":
        name = "/dev/zero"
    elif kind == "escape":
        name = "../rates.csv"
    elif kind == "absolute":
        name = str(ROOT / "pyproject.toml")
    elif kind == "missing":
        name = "missing.csv"
    elif kind == "folder":
        case.files["sub"] = "DIR"
        name = "sub"
    elif kind == "link_out":
        case.files[name] = "->" + str(ROOT / "pyproject.toml")
    else:
        case.files["real.csv"] = _TRACES["good"]
        case.files[name] = "->real.csv"
    workload["schedule"] = {"kind": "trace", "file": name}


_SQL_BREAKERS = [",,", " = = ", "(", "NO_SUCH_FN(x)", "'", " AND", "`"]


def m_sql(case: Case) -> None:
    """Break an SQL expression (predicate, columns, aggregates, join condition)."""
    sql_keys = ("predicate", "condition")
    path = _pick(case, lambda v: isinstance(v, str))
    candidates = [
        p for p in _paths(case.data)
        if isinstance(_get(case.data, p), str) and (p[-1] in sql_keys or (len(p) > 1 and p[-2] in ("columns", "aggregates")))
    ]
    if candidates:
        path = case.rng.choice(candidates)
    if path is not None:
        value = _get(case.data, path)
        at = case.rng.randrange(len(value) + 1)
        _set(case.data, path, value[:at] + case.rng.choice(_SQL_BREAKERS) + value[at:])


DATA_MUTATIONS = [
    m_delete_key, m_swap_type, m_number, m_bounds, m_bounds, m_extreme_workload, m_deep, m_unicode, m_long_string, m_trace, m_sql,
]
TEXT_MUTATIONS = [m_duplicate_key, m_bytes, m_truncate, m_alias]


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    case = Case(rng, rng.choice(SPECS))
    for _ in range(rng.choice([1, 1, 2, 3])):
        pool = DATA_MUTATIONS if case.text is None and rng.random() < 0.7 else TEXT_MUTATIONS
        mutation = rng.choice(pool)
        case.applied.append(mutation.__name__)
        mutation(case)
    return case


def write_case(case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "job.yaml"
    spec.write_bytes(case.render())
    for name, content in case.files.items():
        target = folder / name
        if content == "DIR":
            target.mkdir(exist_ok=True)
        elif isinstance(content, str) and content.startswith("->"):
            target.symlink_to(content[2:])
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return spec


# --------------------------------------------------------------------------------------------------------
# The oracle: exit codes, positions, message length, agreement.

# Errors about a whole file have no line to point at.
_FILE_LEVEL = ("no such file", "directory", "not a regular file", "larger than", "no data rows", "cannot read")
_MAX_ERROR_LINE = 600


def commands(spec: Path, out: Path) -> list[list[str]]:
    return [
        ["validate", str(spec)],
        ["show", str(spec)],
        ["fuse", str(spec), "--json", str(out / "fuse.json")],
        ["simulate", str(spec), "--noise", "0"],
        ["tune", str(spec), "--executor", "sim", "--tuner", "ds2", "--max-steps", "2"],
    ]


def check_error_output(output: str, folder: Path, command: list[str]) -> None:
    """Every problem line names a file of the case, with line:col unless it is about the whole file."""
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert lines, (command, output[-2000:])
    prefix = re.escape(str(folder)) + r"/[^\s:]+"
    problem_lines = [line for line in output.splitlines() if re.match(r"^(error: |  )" + prefix + ":", line)]
    assert problem_lines, (command, "no problem names a file of the case", output[-2000:])
    for line in problem_lines:
        assert len(line) <= _MAX_ERROR_LINE, (command, f"error line of {len(line)} characters", line[:300])
        if re.match(r"^(error: |  )" + prefix + r":\d+:\d+: ", line):
            continue
        if re.match(r"^error: " + prefix + r": \d+ problems$", line):
            continue
        assert any(reason in line for reason in _FILE_LEVEL), (command, "no line:col", line)


def sql_only(spec: Path) -> bool:
    """The spec is invalid only because of an SQL expression (valid when SQL is not checked)."""
    try:
        load_spec(spec, check_sql_expressions=False)
    except SpecError:
        return False
    try:
        load_spec(spec, check_sql_expressions=True)
    except SpecError:
        return True
    return False


@pytest.mark.parametrize("seed", range(FUZZ_SEED, FUZZ_SEED + FUZZ_CASES), ids=lambda s: f"seed{s}")
def test_mutated_spec_gets_the_same_clean_answer_from_every_command(seed: int, tmp_path: Path) -> None:
    case = make_case(seed)
    folder = tmp_path / "case"
    spec = write_case(case, folder)
    verdicts: dict[str, str] = {}
    for command in commands(spec, tmp_path):
        result = runner.invoke(app, command)
        output = result.output
        where = (case.source.name, case.applied, command[0])
        # tune exits 1 when the tuned job does not keep up at the peak: a verdict on the job, not the input.
        allowed = (0, 1, 2) if command[0] == "tune" else (0, 2)
        assert result.exit_code in allowed, (where, result.exit_code, output[-2000:])
        assert "Traceback" not in output and "internal error" not in output, (where, output[-2000:])
        if result.exit_code == 2:
            check_error_output(output, folder, [*where])
        verdicts[command[0]] = "rejected" if result.exit_code == 2 else "accepted"
    if len(set(verdicts.values())) > 1:
        if sql_only(spec):
            pytest.xfail(f"SQL wiring: commands disagree on an SQL-only problem {verdicts} (issue 15, SQL checker)")
        pytest.fail(f"commands disagree on {case.source.name} after {case.applied}: {verdicts}")


def test_the_mutator_is_deterministic_and_covers_every_mutation() -> None:
    first = [make_case(seed) for seed in range(FUZZ_SEED, FUZZ_SEED + FUZZ_CASES)]
    again = [make_case(seed) for seed in range(FUZZ_SEED, FUZZ_SEED + FUZZ_CASES)]
    assert [c.render() for c in first] == [c.render() for c in again]
    applied = {name for c in first for name in c.applied}
    expected = {m.__name__ for m in DATA_MUTATIONS + TEXT_MUTATIONS}
    # The default campaign exercises every kind of mutation at least once.
    assert expected <= applied or FUZZ_CASES < 40, sorted(expected - applied)
