"""Gunicorn configuration: ``gunicorn -c gunicorn.conf.py`` (or ``relay serve``)."""
from relay.runtime.gunicorn_conf import *  # noqa: F403
