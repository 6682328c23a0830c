"""The client against a real ``mcp-audit serve`` (started by the Rust test
``the_python_client_records_and_reads_back_through_a_real_serve``, which passes its address and
tokens in ``MCP_AUDIT_URL``, ``MCP_AUDIT_WRITER_TOKEN`` and ``MCP_AUDIT_READER_TOKEN``).

Each test reads back what it recorded through the server's read API, one event at a time with
its payload (the reader token is an auditor's).
"""

import os
import unittest
import uuid

from mcp_audit_client import AuditTrailService, IngestError, MCPAuditLogger, create_audit_logger

URL = os.environ.get("MCP_AUDIT_URL")
WRITER = os.environ.get("MCP_AUDIT_WRITER_TOKEN")
READER = os.environ.get("MCP_AUDIT_READER_TOKEN")


@unittest.skipUnless(URL and WRITER and READER, "needs a running mcp-audit serve")
class AgainstServe(unittest.TestCase):
    def logger(self, **kwargs):
        return MCPAuditLogger(
            session_id=f"py-{uuid.uuid4()}",
            user_id="ann",
            url=URL,
            token=WRITER,
            reader_token=READER,
            **kwargs,
        )

    def read(self, logger, event_id):
        """The event as the server stored it, payload included."""
        return logger.client.get(f"/api/v1/events/{event_id}")["event"]

    def test_each_mockloop_method_records_the_event_its_arguments_describe(self):
        log = self.logger()
        tool = log.log_tool_execution(
            "search",
            input_parameters={"q": "invoices"},
            execution_result={"hits": 3},
            execution_time_ms=12.5,
            data_sources=["https://api.example/invoices"],
            compliance_tags=["financial"],
            processing_purpose="billing",
            legal_basis="contract",
            gdpr_applicable=True,
            data_subject_id="cust-7",
        )
        event = self.read(log, tool)
        self.assertEqual(event["kind"], "tool_execution")
        self.assertEqual(event["operation"], "search")
        self.assertEqual(event["actor"]["user_id"], "ann")
        self.assertEqual(event["session_id"], log.session_id)
        self.assertEqual(event["duration_us"], 12500)
        self.assertEqual(event["payload"]["input"], {"q": "invoices"})
        self.assertEqual(event["payload"]["output"], {"hits": 3})
        self.assertIn("financial", event["compliance"]["tags"])
        self.assertEqual(event["compliance"]["legal_basis"], "contract")
        self.assertTrue(event["compliance"]["gdpr"])
        self.assertEqual(event["data_sources"][0]["uri"], "https://api.example/invoices")
        self.assertTrue(
            any(t.startswith("submitted-by:token:") for t in event["compliance"]["tags"])
        )

        failed = self.read(
            log, log.log_tool_execution("deploy", error_details="permission denied")
        )
        self.assertEqual(failed["outcome"], "tool_error")
        self.assertEqual(failed["payload"]["error_message"], "permission denied")

        resource = self.read(
            log,
            log.log_resource_access(
                "file:///notes.txt", "read", content_preview="Dear ann", metadata={"size": 8}
            ),
        )
        self.assertEqual(resource["kind"], "resource_access")
        self.assertEqual(resource["action"], "READ")
        self.assertEqual(resource["operation"], "file:///notes.txt")
        self.assertEqual(resource["payload"]["content_preview"], "Dear ann")

        context = self.read(
            log,
            log.log_context_operation(
                "update", "cart", state_before={"n": 1}, state_after={"n": 2}
            ),
        )
        self.assertEqual(context["kind"], "context_operation")
        self.assertEqual(context["action"], "UPDATE")
        self.assertEqual(context["payload"]["state_after"], {"n": 2})

        prompt = self.read(
            log,
            log.log_prompt_invocation(
                "summarise", input_parameters={"doc": "a"}, generated_output="short"
            ),
        )
        self.assertEqual(prompt["kind"], "prompt_execution")
        self.assertEqual(prompt["payload"]["output"]["generated_output"], "short")

    def test_query_and_session_summary_read_what_the_session_recorded(self):
        log = self.logger()
        ids = [log.log_tool_execution(f"tool-{i}") for i in range(3)]
        log.log_resource_access("file:///a", "read")
        found = log.query(session_id=log.session_id)
        self.assertEqual({e["id"] for e in found} & set(ids), set(ids))
        tools = log.query_audit_logs(operation_type="tool_execution", user_id="ann", limit=1000)
        self.assertTrue(set(ids) <= {e["id"] for e in tools})
        self.assertEqual(len(log.query(session_id=log.session_id, limit=2, offset=1)), 2)
        summary = log.get_session_summary()
        self.assertEqual(summary["session_id"], log.session_id)
        self.assertEqual(summary["tool_executions"], 3)
        self.assertEqual(summary["resource_accesses"], 1)
        self.assertEqual(summary, log.session_summary())

    def test_contextforge_methods_record_crud_with_a_change_set_and_data_access(self):
        trail = AuditTrailService(url=URL, token=WRITER, reader_token=READER)
        update = trail.log_crud_operation(
            "UPDATE",
            "tool",
            "tool-42",
            "admin@example.com",
            user_email="admin@example.com",
            team_id="platform",
            old_values={"enabled": True, "name": "x"},
            new_values={"enabled": False, "name": "x"},
        )
        event = trail.client.get(f"/api/v1/events/{update}")["event"]
        self.assertEqual(event["kind"], "admin")
        self.assertEqual(event["operation"], "UPDATE tool")
        self.assertEqual(event["target"]["resource_id"], "tool-42")
        self.assertEqual(event["actor"]["team"], "platform")
        self.assertEqual(
            event["payload"]["changes"], {"enabled": {"old": True, "new": False}}
        )
        failed = trail.log_action(
            "DELETE", "server", "srv-1", "bob", success=False, error_message="in use"
        )
        event = trail.client.get(f"/api/v1/events/{failed}")["event"]
        self.assertEqual(event["outcome"], "tool_error")
        self.assertEqual(event["payload"]["error_message"], "in use")
        access = trail.log_data_access(
            "customer", "cust-1", "carol", access_type="EXPORT",
            data_classification="confidential",
        )
        event = trail.client.get(f"/api/v1/events/{access}")["event"]
        self.assertEqual(event["action"], "EXPORT")
        self.assertTrue(event["compliance"]["requires_review"])

    def test_a_refused_event_raises_with_the_servers_reason_and_nothing_is_recorded(self):
        log = self.logger()
        with self.assertRaises(IngestError) as refused:
            log.log_tool_execution("x", legal_basis="because")
        self.assertEqual(refused.exception.status, 422)
        self.assertEqual(refused.exception.code, "invalid_events")
        self.assertEqual(refused.exception.lines[0]["line"], 1)
        self.assertIn("because", refused.exception.lines[0]["problem"])
        self.assertEqual(log.query(session_id=log.session_id), [])

    def test_the_writer_token_reads_nothing_and_a_missing_token_is_named(self):
        writer_reading = MCPAuditLogger(url=URL, token=WRITER, reader_token=WRITER)
        with self.assertRaises(IngestError) as forbidden:
            writer_reading.query()
        self.assertEqual(forbidden.exception.status, 403)
        no_token = create_audit_logger(url=URL, token=None, reader_token=READER)
        os.environ.pop("MCP_AUDIT_TOKEN", None)
        no_token.client.token = None
        with self.assertRaises(IngestError) as missing:
            no_token.log_tool_execution("x")
        self.assertIn("writer token", str(missing.exception))


if __name__ == "__main__":
    unittest.main()
