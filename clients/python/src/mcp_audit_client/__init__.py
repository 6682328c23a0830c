"""Record MCP audit events into an ``mcp-audit serve`` over its ingest API.

Two classes carry the method names of the two audit loggers that Python MCP servers use, so
that switching is a change of import:

- :class:`MCPAuditLogger` (MockLoop's ``mcp_audit_logger``): ``log_tool_execution``,
  ``log_resource_access``, ``log_context_operation``, ``log_prompt_invocation``, ``query``
  (also ``query_audit_logs``) and ``session_summary`` (also ``get_session_summary``).
- :class:`AuditTrailService` (ContextForge's audit trail): ``log_action``,
  ``log_crud_operation``, ``log_data_access``.

Writing needs a token whose role is ``writer``; ``query`` and ``session_summary`` read through
the console API and need a reading token (viewer or higher; auditor to see arguments and
results). Both come from the constructor or from ``MCP_AUDIT_URL``, ``MCP_AUDIT_TOKEN`` and
``MCP_AUDIT_READER_TOKEN``.

Each ``log_*`` call returns the event's id once the server says the event is durable
(``?wait=durable``); a refused event raises :class:`IngestError` with the server's reason, so
that nothing is lost silently. Only the standard library is used.
"""

from .client import IngestClient, IngestError
from .loggers import AuditTrailService, MCPAuditLogger, create_audit_logger

__all__ = [
    "AuditTrailService",
    "IngestClient",
    "IngestError",
    "MCPAuditLogger",
    "create_audit_logger",
]
