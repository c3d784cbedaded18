"""A Flink distribution of our own, from the PyPI wheels, and the SQL runner jar compiled against it.

`apache-flink-libraries` carries Flink's jars (lib/, opt/, plugins/) and `apache-flink` the start scripts
and the stock conf. Their declared dependencies pin versions that clash with ours (pyarrow, pandas, beam)
and are not needed to run a cluster, so both go `--no-deps` into a venv of their own under the cache dir.
Nothing is downloaded until a `flink` command needs it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from streamtune_cli.cachedir import cache_dir
from streamtune_cli.errors import ExecutorError

__all__ = ["FLINK_VERSION", "FlinkInstall", "cache_dir", "require_java"]

FLINK_VERSION = "2.3.0"
RUNNER_CLASS = "StreamtuneSqlRunner"
_NAME = "flink"


def require_java(tool: str = "java") -> str:
    """The path of `java` (or `javac`), or an error saying what to install."""
    found = shutil.which(tool)
    if found is None:
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home) / "bin" / tool if java_home else None
        if candidate is not None and candidate.exists():
            return str(candidate)
        raise ExecutorError(_NAME, f"`{tool}` not found on PATH (or in $JAVA_HOME/bin): Flink needs a JDK 17 ({tool})")
    return found


@dataclass(frozen=True)
class FlinkInstall:
    """Flink `version` installed under `root` (default: cache_dir()/flink-VERSION)."""

    root: Path
    version: str = FLINK_VERSION

    @classmethod
    def default(cls) -> "FlinkInstall":
        return cls(cache_dir() / f"flink-{FLINK_VERSION}")

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def home(self) -> Path:
        """FLINK_HOME: the installed `pyflink` package (bin/, lib/, conf/, opt/, plugins/)."""
        found = sorted(self.venv.glob("lib/python*/site-packages/pyflink"))
        return found[0] if found else self.venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "pyflink"

    @property
    def installed(self) -> bool:
        home = self.home
        return (home / "bin" / "jobmanager.sh").exists() and any((home / "lib").glob("flink-dist*.jar"))

    def ensure(self, say: Callable[[str], None] = lambda _: None) -> Path:
        """Install the wheels if they are not there yet; returns FLINK_HOME."""
        if self.installed:
            return self.home
        say(f"installing Flink {self.version} (PyPI wheels apache-flink, apache-flink-libraries, ~330 MB) into {self.venv} ...")
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.venv / "bin" / "python").exists():
            self._run([sys.executable, "-m", "venv", str(self.venv)], "create the venv")
        self._run(
            [
                str(self.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                "--disable-pip-version-check", f"apache-flink=={self.version}", f"apache-flink-libraries=={self.version}",
            ],
            "install the Flink wheels",
        )
        if not self.installed:
            raise ExecutorError(_NAME, f"the Flink wheels installed, but {self.home} has no bin/jobmanager.sh or lib/flink-dist jar")
        return self.home

    def runner_jar(self, say: Callable[[str], None] = lambda _: None) -> Path:
        """The SQL runner jar, compiled with `javac` against this Flink's jars at first use and cached by source hash."""
        source = resources.files("streamtune_cli.flink").joinpath(f"{RUNNER_CLASS}.java").read_bytes()
        digest = hashlib.sha256(source + self.version.encode()).hexdigest()[:16]
        jar = self.root / "runner" / f"streamtune-sql-runner-{digest}.jar"
        if jar.exists():
            return jar
        home = self.ensure(say)
        javac = require_java("javac")
        say(f"compiling the SQL runner with {javac} ...")
        build = self.root / "runner" / f"build-{digest}"
        shutil.rmtree(build, ignore_errors=True)
        (build / "classes").mkdir(parents=True)
        (build / f"{RUNNER_CLASS}.java").write_bytes(source)
        self._run(
            [javac, "--release", "17", "-nowarn", "-cp", str(home / "lib" / "*"), "-d", str(build / "classes"), str(build / f"{RUNNER_CLASS}.java")],
            "compile the SQL runner",
        )
        tmp = jar.with_suffix(".jar.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nMain-Class: {RUNNER_CLASS}\n\n")
            # The runner's FLIP-27 generator connector ('connector' = 'streamtune-datagen'), found by the planner.
            out.writestr("META-INF/services/org.apache.flink.table.factories.Factory", f"{RUNNER_CLASS}$GeneratorFactory\n")
            for path in sorted((build / "classes").rglob("*.class")):
                out.write(path, path.relative_to(build / "classes").as_posix())
        os.replace(tmp, jar)
        shutil.rmtree(build, ignore_errors=True)
        return jar

    @staticmethod
    def _run(command: list[str], what: str) -> None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExecutorError(_NAME, f"could not {what}: {exc}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ExecutorError(_NAME, f"could not {what} (exit {done.returncode}): {' | '.join(tail)}")
