"""How the relay runs as processes: gunicorn's configuration and hooks, each worker's
dispatcher, mapping watcher and drain. Nothing here decides what a lead is (relay.intake)
or how it is sent (relay.delivery); this package only starts and stops them.
"""
