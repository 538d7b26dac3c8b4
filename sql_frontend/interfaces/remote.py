"""A connection to a ThanoSQL SQL server: the same `execute` as embedded mode, over HTTP.

    conn = thanosql.connect(url="http://thanosql:8000", api_token="thanosql_...")
    conn.execute("SELECT * FROM mnist_train LIMIT 5")

Errors come back as the same `ThanoSQLError`s, with line:col. While a statement runs, its
progress lines (epochs, loss, images embedded) are polled and printed like embedded mode's.
PRINT IMAGE results carry local copies of their images, fetched from the server.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pandas as pd

from sql_frontend.interfaces import wire
from sql_frontend.interfaces.connection import ConnectionBase
from thanosql.errors import ThanoSQLError

if TYPE_CHECKING:
    from sql_frontend.language.parser import ParsedStatement

progress_log = logging.getLogger("thanosql.progress")
_PROGRESS_POLL_S = 1.0


class RemoteConnection(ConnectionBase):
    def __init__(self, url: str, api_token: str | None, *, timeout_s: float = 3600.0):
        self.url = url.rstrip("/")
        self.api_token = api_token
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_token}"} if api_token else {},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
        )
        self._images = Path(tempfile.gettempdir()) / "thanosql-images" / hashlib.sha1(self.url.encode()).hexdigest()[:12]

    @property
    def home(self) -> str:
        return self.url

    def execute(self, sql: str) -> pd.DataFrame | None:
        results = self.execute_script(sql)
        if len(results) != 1:
            raise ThanoSQLError(f"execute() runs one statement; this text holds {len(results)}.", hint="Use execute_script() for several.")
        return results[0]

    def execute_statement(self, statement: ParsedStatement) -> pd.DataFrame | None:
        return self.execute(statement.text)

    def execute_script(self, sql: str) -> list[pd.DataFrame | None]:
        statement_id = uuid.uuid4().hex
        done = threading.Event()
        watcher = threading.Thread(target=self._show_progress, args=(statement_id, done), daemon=True)
        watcher.start()
        try:
            with self._reaching_server():
                response = self._client.post("/v1/statements", json={"sql": sql, "statement_id": statement_id})
        finally:
            done.set()
        body = self._checked(response)
        return [self._with_images(wire.decode(result["result"])) for result in body["results"]]

    def stream(self, sql: str, chunk_rows: int = 1000):
        """Yield (statement number, DataFrame chunk) as the server streams rows (NDJSON)."""
        import json

        with self._reaching_server(), self._client.stream(
            "POST", "/v1/statements", json={"sql": sql}, headers={"Accept": "application/x-ndjson"}
        ) as response:
            if response.status_code != 200:
                response.read()
                self._checked(response)
            header = None
            for line in response.iter_lines():
                if not line:
                    continue
                item = json.loads(line)
                if "columns" in item:
                    header = item
                elif item.get("rows") is not None and header is not None:
                    yield item["statement"], wire.decode(header, item["rows"])

    @contextmanager
    def _reaching_server(self) -> Iterator[None]:
        """Network failures as ThanoSQL errors: the server is down, unreachable or timed out."""
        try:
            yield
        except httpx.HTTPError as error:
            raise ThanoSQLError(
                f"Cannot reach the ThanoSQL SQL server at {self.url}: {type(error).__name__}: {error}",
                hint="Check the URL (thanosql.connect(url=...), %thanosql URL=..., $THANOSQL_URL) and that `thanosql serve` runs there.",
            ) from None

    def _checked(self, response: httpx.Response) -> dict:
        if response.status_code == 401:
            said = "refused the API token" if self.api_token else "needs an API token, and none was sent"
            raise ThanoSQLError(
                f"The SQL server {said} (401).",
                hint="Give one: api_token= to thanosql.connect, %thanosql API_TOKEN=... in a notebook, or --api-token "
                "(or $THANOSQL_API_TOKEN) to the thanosql command; `thanosql token create NAME` on the server issues one.",
            )
        try:
            body = response.json()
        except ValueError:
            raise ThanoSQLError(f"The SQL server answered {response.status_code}: {response.text[:500]}") from None
        if "error" in body:
            raise wire.decode_error(body)
        if response.status_code != 200:
            raise ThanoSQLError(f"The SQL server answered {response.status_code}: {body}")
        return body

    def _show_progress(self, statement_id: str, done: threading.Event) -> None:
        shown = 0
        while not done.wait(_PROGRESS_POLL_S):
            try:
                response = self._client.get(f"/v1/statements/{statement_id}", timeout=5.0)
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            messages = response.json().get("messages", [])
            for message in messages[shown:]:
                progress_log.info(message)
            shown = len(messages)

    def _with_images(self, rows: pd.DataFrame | None) -> pd.DataFrame | None:
        printed = rows.attrs.get(wire.PRINT_ATTR) if rows is not None else None
        if printed is None:
            return rows
        paths = []
        for value in rows[printed["column"]]:
            local = self._images / hashlib.sha1(str(value).encode()).hexdigest()[:16] / Path(str(value)).name
            if not local.exists():
                with self._reaching_server():
                    response = self._client.get("/v1/images", params={"path": str(value)})
                self._checked(response) if response.status_code != 200 else None
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(response.content)
            paths.append(str(local))
        rows.attrs[wire.PRINT_ATTR] = {**printed, "paths": paths}
        return rows

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"<thanosql.RemoteConnection url={self.url!r}>"
