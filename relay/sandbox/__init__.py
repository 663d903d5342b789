"""A local stand-in for Trackdrive's leads API."""
from relay.sandbox.app import create_sandbox_app, sandbox_state
from relay.sandbox.behaviour import Behaviour
from relay.sandbox.server import make_sandbox_server, serve_in_thread

__all__ = ["Behaviour", "create_sandbox_app", "make_sandbox_server", "sandbox_state",
           "serve_in_thread"]
