"""A local stand-in for Trackdrive's leads API, and for the vendor APIs fetch sources read."""
from relay.sandbox.app import create_sandbox_app, sandbox_state
from relay.sandbox.behaviour import Behaviour
from relay.sandbox.server import make_sandbox_server, serve_in_thread
from relay.sandbox.vendors import VendorBehaviour

__all__ = [
           "Behaviour",
           "VendorBehaviour",
           "create_sandbox_app",
           "make_sandbox_server",
           "sandbox_state",
           "serve_in_thread",
]
