"""Gunicorn configuration: ``gunicorn -c gunicorn.conf.py`` (or ``relay serve``)."""
from relay.web.gunicorn_conf import *  # noqa: F403
