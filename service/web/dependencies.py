"""Dependencies the routers share."""
from __future__ import annotations

from fastapi import Request

from ..core.decision import Evaluator


def evaluator_of(request: Request) -> Evaluator:
    """This process's evaluator (for routes that read it without a dependency)."""
    return request.app.state.evaluator


async def evaluator(request: Request) -> Evaluator:
    return evaluator_of(request)
