"""Writes a MockLoop audit database with MockLoop's own logger (mockloop-mcp's MCPAuditLogger).

Usage: mockloop_seed.py DB

Logs tool executions (one with lineage, one with compliance flags), resource accesses, a context
operation and a prompt invocation, each through the logger's own method, so that every row,
timestamp and content_hash is the package's. The logger creates `mcp_compliance_events` but has
no method that writes it (nothing in the package inserts into it), so its rows are inserted into
the logger's own table with the columns the logger declares, as a caller of the package would.
Prints one JSON object: the entry ids by name, for the test to look for.
"""

import json
import sqlite3
import sys
from datetime import datetime, timezone

from mockloop_mcp.mcp_audit_logger import MCPAuditLogger


def main() -> None:
    db = sys.argv[1]
    logger = MCPAuditLogger(db_path=db, session_id="sess-mockloop-1", user_id="alice")
    ids = {}
    ids["search"] = logger.log_tool_execution(
        tool_name="search_customers",
        input_parameters={"query": "acme", "limit": 5, "ratio": 0.25, "name": "Zoë"},
        execution_result={"rows": [{"id": 1, "name": "Acme"}], "total": 1},
        execution_time_ms=12.5,
        data_sources=["postgres://crm/customers", "s3://exports/customers.csv"],
        compliance_tags=["pii", "gdpr"],
        processing_purpose="customer_support",
        legal_basis="legitimate_interests",
        gdpr_applicable=True,
        data_subject_id="subject-42",
        retention_policy="standard",
    )
    ids["bare_tool"] = logger.log_tool_execution(tool_name="ping", input_parameters={})
    ids["resource"] = logger.log_resource_access(
        resource_uri="file:///docs/handbook.md",
        access_type="read",
        metadata={"size": 2048},
        content_preview="# Handbook\nWelcome",
        user_id="bob",
        execution_time_ms=3.0,
    )
    ids["context"] = logger.log_context_operation(
        operation_type="update",
        context_key="cart",
        state_before={"items": 1},
        state_after={"items": 2},
        compliance_tags=["session"],
    )
    ids["prompt"] = logger.log_prompt_invocation(
        prompt_name="summarise",
        input_parameters={"text": "long text"},
        generated_output={"summary": "short"},
        execution_time_ms=40.0,
        data_sources=["file:///docs/input.txt"],
    )
    # The one table the logger declares and never writes: rows as its columns describe them.
    with sqlite3.connect(db) as conn:
        cursor = conn.execute(
            "INSERT INTO mcp_compliance_events (session_id, event_type, compliance_framework,"
            " event_details, risk_level, mitigation_actions, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                logger.session_id,
                "data_access",
                "GDPR",
                json.dumps({"entry_id": ids["search"], "subject": "subject-42"}),
                "high",
                json.dumps(["notify_dpo", "review_access"]),
                datetime.now(timezone.utc).isoformat(),
            ),
        )
        ids["compliance"] = cursor.lastrowid
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
