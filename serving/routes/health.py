from fastapi import APIRouter, Request
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", response_model=Health, summary="Liveness and database reachability")
async def health(request: Request) -> Health:
    await request.app.state.db.fetch_unscoped("SELECT 1")
    return Health(status="ok", database="ok")
