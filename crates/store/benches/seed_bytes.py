"""Writes the seed logger's benchmark event N times with the seed's own package (mockloop-mcp's
MCPAuditLogger), for the `bytes` benchmark to measure its database beside ours.

Usage: seed_bytes.py DB N

The event is the one `benches/events/mod.rs::seed_event` builds: `read_file` of one file, a
result of 200 bytes, that file as its one data source, GDPR tags and a purpose.
"""

import sys

from mockloop_mcp.mcp_audit_logger import MCPAuditLogger

RESULT = (
    "Quarterly report: revenue grew 12% over the previous quarter, driven by the EMEA region; "
    "operating costs fell 3%. Three customer escalations remain open and are tracked in the "
    "support queue. See CRM4."
)


def main() -> None:
    db, n = sys.argv[1], int(sys.argv[2])
    assert len(RESULT) == 200
    logger = MCPAuditLogger(db_path=db, session_id="session-1", user_id="user-1")
    for i in range(n):
        path = f"/data/documents/report_{i % 10000}.txt"
        logger.log_tool_execution(
            tool_name="read_file",
            input_parameters={"path": path},
            execution_result={"content": RESULT},
            execution_time_ms=1.0 + (i % 20000) / 1000,
            data_sources=[f"file://{path}"],
            compliance_tags=["gdpr", "file_access"],
            processing_purpose="document_review",
            legal_basis="legitimate_interests",
            user_id=f"user-{i % 1000}",
            gdpr_applicable=True,
        )


if __name__ == "__main__":
    main()
