"""Writes a ContextForge audit database with the gateway's own audit trail service.

Usage: contextforge_seed.py DB

Points mcp-contextforge-gateway at a SQLite file (its `DATABASE_URL`), creates the gateway's
tables from its own models, turns its audit trail on (`AUDIT_TRAIL_ENABLED`, off by default) and
logs CRUD operations (an UPDATE with its change set), a data access, a failed action and a plain
`log_audit` through `AuditTrailService`. Prints one JSON object: the row ids by name.
"""

import json
import os
import secrets
import sys


def main() -> None:
    db = os.path.abspath(sys.argv[1])
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["AUDIT_TRAIL_ENABLED"] = "true"
    # The gateway refuses to start on its placeholder secrets; a throwaway database gets
    # throwaway ones.
    for name in ("JWT_SECRET_KEY", "AUTH_ENCRYPTION_SECRET", "PLATFORM_ADMIN_PASSWORD"):
        os.environ.setdefault(name, secrets.token_urlsafe(48))

    # Imported after the environment is set: the gateway reads its settings at import.
    from mcpgateway.db import Base, engine  # noqa: PLC0415
    from mcpgateway.services.audit_trail_service import AuditTrailService  # noqa: PLC0415

    Base.metadata.create_all(bind=engine)
    service = AuditTrailService()
    ids = {}
    created = service.log_crud_operation(
        operation="CREATE",
        resource_type="tool",
        resource_id="tool-1",
        resource_name="search",
        user_id="alice",
        user_email="alice@example.com",
        team_id="team-a",
        new_values={"name": "search", "enabled": True},
        client_ip="10.0.0.7",
        user_agent="curl/8.5",
        request_path="/tools",
        request_method="POST",
    )
    ids["create"] = created.id
    updated = service.log_crud_operation(
        operation="UPDATE",
        resource_type="user",
        resource_id="user-9",
        resource_name="bob",
        user_id="admin",
        old_values={"role": "viewer", "name": "Bob"},
        new_values={"role": "admin", "name": "Bob"},
    )
    ids["update"] = updated.id
    deleted = service.log_crud_operation(
        operation="DELETE",
        resource_type="server",
        resource_id="srv-3",
        user_id="alice",
        old_values={"name": "legacy"},
        success=False,
        error_message="server is in use",
    )
    ids["delete"] = deleted.id
    read = service.log_data_access(
        resource_type="resource",
        resource_id="res-5",
        user_id="carol",
        access_type="EXPORT",
        data_classification="restricted",
    )
    ids["export"] = read.id
    plain = service.log_audit(
        user_id="alice",
        resource_type="gateway",
        resource_id="gw-1",
        action="EXECUTE",
        description="health check",
    )
    ids["execute"] = plain.id
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
