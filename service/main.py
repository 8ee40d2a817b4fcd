"""ASGI entry point: `uvicorn service.main:app` (see the Makefile and Dockerfile)."""
from .app import create_app

app = create_app()
