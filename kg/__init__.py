"""kgedit graph side: data model, stores, change log, verbalisation and importers.

Never imports `editor`; the two sides meet only through `contracts.types`.
"""
