from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.responses import json_response

router = APIRouter(prefix="/api/brain/tenants", tags=["tenants"], responses=ERROR_RESPONSES)


class TenantMe(BaseModel):
    tenant_id: str
    display_name: str
    kind: str
    tier: str
    parent_tenant_id: str | None
    domains: list[str]
    status: str
    readable_tenants: list[str]
    profile_materialized_at: datetime | None
    credential_tenant_id: str
    role: str
    authenticated_via: str


@router.get("/me", response_model=TenantMe, summary="The tenant this request runs as")
async def me(request: Request, scope: TenantScope):
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        """SELECT t.tenant_id, t.display_name, t.kind, t.tier, t.parent_tenant_id, t.domains,
                  t.status, core.readable_tenants() AS readable_tenants,
                  p.materialized_at AS profile_materialized_at
             FROM core.tenants t LEFT JOIN core.tenant_profile p ON p.tenant_id = t.tenant_id
            WHERE t.tenant_id = %s""",
        (scope.tenant_id,),
    )
    if not rows:  # offboarded since the credential was cached
        raise ApiError(404, "tenant not found")
    return json_response(
        {
            **rows[0],
            "credential_tenant_id": scope.principal.tenant_id,
            "role": scope.principal.role,
            "authenticated_via": scope.principal.via,
        }
    )
