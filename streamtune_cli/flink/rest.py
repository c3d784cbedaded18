"""A small client for Flink's REST API (the endpoints streamtune uses; facts in FLINK.md).

Every call has a timeout; connection errors, timeouts and 5xx answers are retried with exponential backoff
(tenacity) a bounded number of times, then reported as one `ExecutorError` line naming the URL. A 4xx is
not retried: it names what Flink said.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from streamtune_cli.errors import ExecutorError

__all__ = ["FlinkRest", "FlinkHttpError"]


class FlinkHttpError(ExecutorError):
    """Flink answered with an error status; `status` is the HTTP code."""

    def __init__(self, message: str, status: int):
        super().__init__("flink", message)
        self.status = status


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, FlinkHttpError):
        return exc.status >= 500
    return isinstance(exc, (httpx.TransportError,))


class FlinkRest:
    """`FlinkRest("http://127.0.0.1:8081")`: GET/PUT/POST with retries; `attempts=1` turns retrying off."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, attempts: int = 4, backoff_s: float = 0.5):
        if not url.startswith(("http://", "https://")):
            url = "http://" + url
        self.url = url.rstrip("/")
        self.attempts = max(1, int(attempts))
        self.backoff_s = backoff_s
        try:
            self._client = httpx.Client(base_url=self.url, timeout=timeout_s)
            self._client.build_request("GET", "/overview")
        except (httpx.InvalidURL, ValueError) as exc:
            from streamtune_cli.errors import UsageError

            raise UsageError(f"not a usable REST address: {url!r} ({exc})") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "FlinkRest":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- verbs -------------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params or None)

    def put(self, path: str, body: Any) -> Any:
        return self._call("PUT", path, json=body)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self._call("POST", path, json=body, **kwargs) if body is not None else self._call("POST", path, **kwargs)

    def patch(self, path: str, **params: Any) -> Any:
        return self._call("PATCH", path, params=params or None)

    # -- endpoints -----------------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        return self.get("/overview")

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.get("/jobs/overview").get("jobs", []))

    def job(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/jobs/{job_id}")

    def plan(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/jobs/{job_id}/plan")["plan"]

    def vertex_metrics(self, job_id: str, vertex_id: str, names: list[str]) -> dict[str, dict[str, float]]:
        """Aggregated subtask metrics of a vertex: {name: {"avg", "max", "min", "sum"}} (values may be NaN)."""
        rows = self.get(
            f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics", get=",".join(names), agg="min,max,avg,sum"
        )
        return {row["id"]: {k: _number(v) for k, v in row.items() if k != "id"} for row in rows}

    def resource_requirements(self, job_id: str) -> dict[str, Any]:
        return self.get(f"/jobs/{job_id}/resource-requirements")

    def set_resource_requirements(self, job_id: str, body: dict[str, Any]) -> None:
        self.put(f"/jobs/{job_id}/resource-requirements", body)

    def upload_jar(self, path: str) -> str:
        with open(path, "rb") as handle:
            answer = self._call(
                "POST", "/jars/upload", files={"jarfile": (path.rsplit("/", 1)[-1], handle, "application/x-java-archive")}
            )
        return str(answer["filename"]).rsplit("/", 1)[-1]

    def run_jar(self, jar_id: str, body: dict[str, Any]) -> str:
        """Start a program: tried once (a retry after a timeout could submit a second copy of the job)."""
        return str(self._call("POST", f"/jars/{jar_id}/run", json=body, timeout=120.0, _attempts=1)["jobid"])

    def cancel(self, job_id: str) -> None:
        self.patch(f"/jobs/{job_id}", mode="cancel")

    # -- internals ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, _attempts: int | None = None, **kwargs: Any) -> Any:
        attempts = self.attempts if _attempts is None else _attempts
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=8.0),
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ExecutorError(
                "flink", f"{method} {self.url}{path} failed after {attempts} tries: {type(exc).__name__}: {exc}"
            ) from None
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, **kwargs: Any) -> Any:
        if "files" in kwargs:  # an upload: rewind the file for a retry
            for _, handle, _ in kwargs["files"].values():
                handle.seek(0)
        response = self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise FlinkHttpError(
                f"{method} {self.url}{path} answered {response.status_code}: {_flink_errors(response)}", response.status_code
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except json.JSONDecodeError:
            raise ExecutorError("flink", f"{method} {self.url}{path} answered something that is not JSON") from None


def _flink_errors(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors", [])
    except (json.JSONDecodeError, AttributeError):
        return response.text.strip()[:200] or response.reason_phrase
    if not errors:
        return response.reason_phrase
    lines = [line.strip() for error in errors for line in str(error).strip().splitlines() if line.strip()]
    # A failed program's answer is a stack trace: its last "Caused by:" is what went wrong (a SQL error).
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    return (causes[-1] if causes else lines[0])[:300]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
