"""The HTTP side: POST events, GET the read API. Standard library only (urllib)."""

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterable, List, Optional


class IngestError(Exception):
    """The server refused a request, or could not be reached.

    ``status`` is the HTTP status (``None`` when the server was not reached), ``code`` the
    API's error code (``invalid_events``, ``forbidden``, ...), and ``lines`` the bad lines of a
    refused batch, each ``{"line": n, "problem": "..."}``.
    """

    def __init__(
        self,
        message: str,
        status: Optional[int] = None,
        code: Optional[str] = None,
        lines: Optional[List[Dict[str, Any]]] = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.lines = lines or []


class IngestClient:
    """A connection to one ``mcp-audit serve``: events in with a writer token, reads out with
    a reader token."""

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        reader_token: Optional[str] = None,
        timeout: float = 30.0,
    ):
        self.url = (url or os.environ.get("MCP_AUDIT_URL") or "http://127.0.0.1:8700").rstrip(
            "/"
        )
        self.token = token or os.environ.get("MCP_AUDIT_TOKEN")
        self.reader_token = reader_token or os.environ.get("MCP_AUDIT_READER_TOKEN")
        self.timeout = timeout

    def record(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """Records one event and waits until it is durable; returns the server's receipt
        (``id``, ``log_id``, ``seq``)."""
        return self.record_many([event])[0]

    def record_many(self, events: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Records several events all or nothing (one bad event refuses them all) and waits
        until they are durable; returns a receipt per event, in order."""
        body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)
        answer = self._send(
            "POST",
            "/api/v1/events?wait=durable",
            self._need(self.token, "a writer token (MCP_AUDIT_TOKEN)"),
            body.encode("utf-8"),
            "application/jsonl",
        )
        return answer["events"]

    def get(self, path: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """A GET of the read API with the reader token; ``None`` values are left out."""
        query = urllib.parse.urlencode(
            {k: v for k, v in (params or {}).items() if v is not None}
        )
        target = path + ("?" + query if query else "")
        return self._send(
            "GET",
            target,
            self._need(self.reader_token, "a reader token (MCP_AUDIT_READER_TOKEN)"),
        )

    @staticmethod
    def _need(token: Optional[str], what: str) -> str:
        if not token:
            raise IngestError(f"no token: this call needs {what}")
        return token

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
    ) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Accept", "application/json")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise _api_error(e) from None
        except urllib.error.URLError as e:
            raise IngestError(f"cannot reach {self.url}: {e.reason}") from None


def _api_error(e: "urllib.error.HTTPError") -> IngestError:
    text = e.read().decode("utf-8", "replace")
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError):
        return IngestError(f"HTTP {e.code}: {text}", status=e.code)
    return IngestError(
        error.get("message", text),
        status=e.code,
        code=error.get("code"),
        lines=error.get("lines"),
    )
