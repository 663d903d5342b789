"""Where a received request becomes leads: the one pipeline every entry point shares.

``pipeline.evaluate`` (parse → split → map now or defer to a fetch → dedupe keys)
touches no network and no database: the web hook, ``relay preview``, ``relay
mappings test`` and replay all call it. ``accept.accept`` adds the commit and
the hand-over to delivery. The source registry, the one mapping-file lister,
the watcher, inbound authentication and rate limits live here too.
"""
