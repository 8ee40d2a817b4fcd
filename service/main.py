"""ASGI entry point of each worker: `uvicorn service.main:app` (service.serve starts the workers)."""
from .app import create_app
from .settings import Settings
from .web import heap
from .web.telemetry import configure_logging

configure_logging(Settings().log_level)   # workers are spawned: they set up their own (JSON) logging
app = create_app()
heap.settle()          # what start-up built stays out of the garbage collector's way
