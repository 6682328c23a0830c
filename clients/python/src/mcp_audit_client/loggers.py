"""The seeds' loggers over the ingest API: each method builds the event `mcp-audit log` takes
(see ``mcp-audit schema``) and records it durably.

The events are what the server says they are: classification, review flag, change set and
expiry are derived by the server's policy, as for every other way in; the server also tags
each event with the writer token that sent it.
"""

import uuid
from typing import Any, Dict, List, Optional

from .client import IngestClient

# MockLoop's context operations (``set``, ``get``, ``update``, ``delete``) as actions.
_CONTEXT_ACTIONS = {"set": "CREATE", "get": "READ", "update": "UPDATE", "delete": "DELETE"}
# MockLoop's access types as actions; another access type is kept as a custom action.
_ACCESS_ACTIONS = {"read": "READ", "write": "UPDATE", "list": "READ", "access": "ACCESS"}


def _compact(value: Any) -> Any:
    """``value`` without the members that are ``None`` (an empty object becomes ``None``)."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items() if v is not None}
        kept = {k: v for k, v in kept.items() if v is not None}
        return kept or None
    return value


def _duration_us(execution_time_ms: Optional[float]) -> Optional[int]:
    if execution_time_ms is None:
        return None
    return max(0, int(round(execution_time_ms * 1000)))


class MCPAuditLogger:
    """MockLoop's ``MCPAuditLogger``, recording into mcp-audit.

    ``db_path``, ``enable_performance_tracking`` and ``enable_content_hashing`` are taken so
    that existing calls keep working, and play no part: the server keeps the log, seals every
    event and times nothing itself. ``url``, ``token`` and ``reader_token`` (or the
    ``MCP_AUDIT_*`` environment variables) say where it is.
    """

    def __init__(
        self,
        db_path: str = "mcp_audit.db",
        session_id: Optional[str] = None,
        user_id: Optional[str] = None,
        enable_performance_tracking: bool = True,
        enable_content_hashing: bool = True,
        auto_log_session: bool = False,
        *,
        url: Optional[str] = None,
        token: Optional[str] = None,
        reader_token: Optional[str] = None,
        server_name: Optional[str] = None,
    ):
        self.db_path = db_path
        self.session_id = session_id or str(uuid.uuid4())
        self.user_id = user_id
        self.enable_performance_tracking = enable_performance_tracking
        self.enable_content_hashing = enable_content_hashing
        self.server_name = server_name
        self.client = IngestClient(url=url, token=token, reader_token=reader_token)
        if auto_log_session:
            self._record(
                {
                    "kind": "session",
                    "action": "CREATE",
                    "operation": "session_start",
                    "actor": {"user_id": user_id},
                }
            )

    def _record(self, event: Dict[str, Any]) -> str:
        event.setdefault("session_id", self.session_id)
        if self.server_name:
            event.setdefault("target", {})["server_name"] = self.server_name
        return self.client.record(_compact(event))["id"]

    @staticmethod
    def _compliance(
        compliance_tags: Optional[List[str]],
        processing_purpose: Optional[str],
        legal_basis: Optional[str],
        gdpr_applicable: bool = False,
        ccpa_applicable: bool = False,
        data_subject_id: Optional[str] = None,
        retention_policy: Optional[str] = None,
    ) -> Dict[str, Any]:
        return {
            "tags": list(compliance_tags) if compliance_tags else None,
            "purpose": processing_purpose,
            "legal_basis": legal_basis,
            "gdpr": gdpr_applicable or None,
            "ccpa": ccpa_applicable or None,
            "data_subject_id": data_subject_id,
            "retention": retention_policy,
        }

    def log_tool_execution(
        self,
        tool_name: str,
        input_parameters: Optional[Dict[str, Any]] = None,
        execution_result: Optional[Dict[str, Any]] = None,
        execution_time_ms: Optional[float] = None,
        data_sources: Optional[List[str]] = None,
        compliance_tags: Optional[List[str]] = None,
        processing_purpose: Optional[str] = None,
        legal_basis: Optional[str] = None,
        user_id: Optional[str] = None,
        gdpr_applicable: bool = False,
        ccpa_applicable: bool = False,
        data_subject_id: Optional[str] = None,
        retention_policy: Optional[str] = None,
        error_details: Optional[str] = None,
    ) -> str:
        """Records a tool execution; returns the event id. With ``error_details`` the call is
        recorded as a ``tool_error`` with that message."""
        return self._record(
            {
                "kind": "tool_execution",
                "action": "EXECUTE",
                "operation": tool_name,
                "actor": {"user_id": user_id or self.user_id},
                "duration_us": _duration_us(execution_time_ms),
                "outcome": "tool_error" if error_details else None,
                "data_sources": list(data_sources) if data_sources else None,
                "compliance": self._compliance(
                    compliance_tags,
                    processing_purpose,
                    legal_basis,
                    gdpr_applicable,
                    ccpa_applicable,
                    data_subject_id,
                    retention_policy,
                ),
                "payload": {
                    "input": input_parameters,
                    "output": execution_result,
                    "error_message": error_details,
                },
            }
        )

    def log_resource_access(
        self,
        resource_uri: str,
        access_type: str,
        metadata: Optional[Dict[str, Any]] = None,
        content_preview: Optional[str] = None,
        data_sources: Optional[List[str]] = None,
        compliance_tags: Optional[List[str]] = None,
        processing_purpose: Optional[str] = None,
        legal_basis: Optional[str] = None,
        user_id: Optional[str] = None,
        gdpr_applicable: bool = False,
        ccpa_applicable: bool = False,
        data_subject_id: Optional[str] = None,
        retention_policy: Optional[str] = None,
        execution_time_ms: Optional[float] = None,
    ) -> str:
        """Records a resource access (``access_type`` ``read``, ``write``, ``list``, ...);
        returns the event id."""
        action = _ACCESS_ACTIONS.get(access_type.lower(), "ACCESS")
        meta = dict(metadata) if metadata else {}
        if access_type.lower() not in _ACCESS_ACTIONS or access_type.lower() == "list":
            meta.setdefault("access_type", access_type)
        return self._record(
            {
                "kind": "resource_access",
                "action": action,
                "operation": resource_uri,
                "actor": {"user_id": user_id or self.user_id},
                "target": {"resource_type": "resource", "resource_id": resource_uri},
                "duration_us": _duration_us(execution_time_ms),
                "data_sources": list(data_sources) if data_sources else None,
                "compliance": self._compliance(
                    compliance_tags,
                    processing_purpose,
                    legal_basis,
                    gdpr_applicable,
                    ccpa_applicable,
                    data_subject_id,
                    retention_policy,
                ),
                "payload": {"metadata": meta or None, "content_preview": content_preview},
            }
        )

    def log_context_operation(
        self,
        operation_type: str,
        context_key: str,
        state_before: Optional[Dict[str, Any]] = None,
        state_after: Optional[Dict[str, Any]] = None,
        compliance_tags: Optional[List[str]] = None,
        processing_purpose: Optional[str] = None,
        legal_basis: Optional[str] = None,
        user_id: Optional[str] = None,
    ) -> str:
        """Records a context operation (``set``, ``get``, ``update``, ``delete``) on
        ``context_key``; returns the event id."""
        action = _CONTEXT_ACTIONS.get(operation_type.lower(), "UPDATE")
        return self._record(
            {
                "kind": "context_operation",
                "action": action,
                "operation": context_key,
                "actor": {"user_id": user_id or self.user_id},
                "compliance": self._compliance(compliance_tags, processing_purpose, legal_basis),
                "payload": {
                    "state_before": state_before,
                    "state_after": state_after,
                    "details": {"operation_type": operation_type},
                },
            }
        )

    def log_prompt_invocation(
        self,
        prompt_name: str,
        input_parameters: Optional[Dict[str, Any]] = None,
        execution_result: Optional[Dict[str, Any]] = None,
        execution_time_ms: Optional[float] = None,
        data_sources: Optional[List[str]] = None,
        compliance_tags: Optional[List[str]] = None,
        processing_purpose: Optional[str] = None,
        legal_basis: Optional[str] = None,
        user_id: Optional[str] = None,
        gdpr_applicable: bool = False,
        ccpa_applicable: bool = False,
        data_subject_id: Optional[str] = None,
        retention_policy: Optional[str] = None,
        generated_output: Any = None,
    ) -> str:
        """Records a prompt invocation; returns the event id. ``generated_output`` is kept
        beside the result (``payload.output``)."""
        output: Any = execution_result
        if generated_output is not None:
            output = {"result": execution_result, "generated_output": generated_output}
        return self._record(
            {
                "kind": "prompt_execution",
                "action": "EXECUTE",
                "operation": prompt_name,
                "actor": {"user_id": user_id or self.user_id},
                "target": {"resource_type": "prompt"},
                "duration_us": _duration_us(execution_time_ms),
                "data_sources": list(data_sources) if data_sources else None,
                "compliance": self._compliance(
                    compliance_tags,
                    processing_purpose,
                    legal_basis,
                    gdpr_applicable,
                    ccpa_applicable,
                    data_subject_id,
                    retention_policy,
                ),
                "payload": {"input": input_parameters, "output": output},
            }
        )

    def query(
        self,
        operation_type: Optional[str] = None,
        user_id: Optional[str] = None,
        start_time: Optional[str] = None,
        end_time: Optional[str] = None,
        limit: int = 100,
        offset: int = 0,
        session_id: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """Events newest first, filtered as the seed's ``query_audit_logs`` filters (the
        kind, the user, a time window), from the console API with the reader token. Lists
        carry metadata only: an event's arguments and results are read one at a time
        (``/api/v1/events/{id}``, auditor or higher)."""
        events = self.client.get(
            "/api/v1/events",
            {
                "kind": operation_type,
                "user": user_id,
                "session": session_id,
                "since": start_time,
                "until": end_time,
                "limit": limit + offset,
            },
        )["events"]
        return events[offset : offset + limit]

    query_audit_logs = query

    def session_summary(self) -> Dict[str, Any]:
        """This logger's session summarised by the server (operations by kind and outcome,
        users, first and last activity), with the reader token."""
        summary = self.client.get("/api/v1/summary", {"session": self.session_id})
        summary["session_id"] = self.session_id
        return summary

    get_session_summary = session_summary

    def close_session(self) -> str:
        """Records the end of this logger's session; returns the event id."""
        return self._record(
            {
                "kind": "session",
                "action": "DELETE",
                "operation": "session_end",
                "actor": {"user_id": self.user_id},
            }
        )


def create_audit_logger(
    db_path: str = "mcp_audit.db",
    session_id: Optional[str] = None,
    user_id: Optional[str] = None,
    enable_performance_tracking: bool = True,
    enable_content_hashing: bool = True,
    **connection: Any,
) -> MCPAuditLogger:
    """As the seed's ``create_audit_logger``; ``url``, ``token`` and ``reader_token`` may be
    given here too."""
    return MCPAuditLogger(
        db_path=db_path,
        session_id=session_id,
        user_id=user_id,
        enable_performance_tracking=enable_performance_tracking,
        enable_content_hashing=enable_content_hashing,
        **connection,
    )


class AuditTrailService:
    """ContextForge's ``AuditTrailService``, recording into mcp-audit.

    The methods take the seed's arguments (``db``, a database session there, is taken and
    ignored) and return the recorded event's id. Unlike the seed, a refused or unrecorded
    event raises :class:`~mcp_audit_client.IngestError` rather than returning ``None``: an
    audit record that was not made is never silent.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        reader_token: Optional[str] = None,
    ):
        self.client = IngestClient(url=url, token=token, reader_token=reader_token)

    def log_action(
        self,
        action: str,
        resource_type: str,
        resource_id: str,
        user_id: str,
        user_email: Optional[str] = None,
        team_id: Optional[str] = None,
        resource_name: Optional[str] = None,
        client_ip: Optional[str] = None,
        user_agent: Optional[str] = None,
        request_path: Optional[str] = None,
        request_method: Optional[str] = None,
        old_values: Optional[Dict[str, Any]] = None,
        new_values: Optional[Dict[str, Any]] = None,
        changes: Optional[Dict[str, Any]] = None,
        data_classification: Optional[str] = None,
        requires_review: Optional[bool] = None,
        success: bool = True,
        error_message: Optional[str] = None,
        context: Optional[Dict[str, Any]] = None,
        details: Optional[Dict[str, Any]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        db: Any = None,
    ) -> str:
        """Records an action on a managed resource; returns the event id. A missing
        classification and review flag are derived by the server, as the seed derives them."""
        event = {
            "kind": "admin",
            "action": action,
            "operation": f"{action} {resource_type}",
            "actor": {
                "user_id": user_id,
                "email": user_email,
                "team": team_id,
                "client_ip": client_ip,
                "user_agent": user_agent,
            },
            "target": {
                "resource_type": resource_type,
                "resource_id": resource_id,
                "resource_name": resource_name,
                "request_path": request_path,
                "request_method": request_method,
            },
            "compliance": {
                "classification": data_classification,
                "requires_review": requires_review,
            },
            # The seed's forms: the server turns them into `outcome` and the payload's message.
            "success": success,
            "error_message": error_message,
            "payload": {
                "old_values": old_values,
                "new_values": new_values,
                "changes": changes,
                "context": context,
                "details": details,
                "metadata": metadata,
            },
        }
        return self.client.record(_compact(event))["id"]

    def log_crud_operation(
        self,
        operation: str,
        resource_type: str,
        resource_id: str,
        user_id: str,
        user_email: Optional[str] = None,
        team_id: Optional[str] = None,
        resource_name: Optional[str] = None,
        old_values: Optional[Dict[str, Any]] = None,
        new_values: Optional[Dict[str, Any]] = None,
        success: bool = True,
        error_message: Optional[str] = None,
        db: Any = None,
        **kwargs: Any,
    ) -> str:
        """Records a CRUD operation; the server computes the change set of an UPDATE from the
        old and new values, and the classification from the resource type."""
        return self.log_action(
            action=operation,
            resource_type=resource_type,
            resource_id=resource_id,
            user_id=user_id,
            user_email=user_email,
            team_id=team_id,
            resource_name=resource_name,
            old_values=old_values,
            new_values=new_values,
            success=success,
            error_message=error_message,
            db=db,
            **kwargs,
        )

    def log_data_access(
        self,
        resource_type: str,
        resource_id: str,
        user_id: str,
        access_type: str = "READ",
        user_email: Optional[str] = None,
        team_id: Optional[str] = None,
        resource_name: Optional[str] = None,
        data_classification: Optional[str] = None,
        db: Any = None,
        **kwargs: Any,
    ) -> str:
        """Records an access to data (``READ``, ``EXPORT``, ...); confidential and restricted
        data are flagged for review, as the seed flags them."""
        kwargs.setdefault(
            "requires_review", data_classification in ("confidential", "restricted")
        )
        return self.log_action(
            action=access_type,
            resource_type=resource_type,
            resource_id=resource_id,
            user_id=user_id,
            user_email=user_email,
            team_id=team_id,
            resource_name=resource_name,
            data_classification=data_classification,
            db=db,
            **kwargs,
        )
