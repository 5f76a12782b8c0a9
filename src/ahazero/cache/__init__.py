"""The cache wing: where fetched and converted files live, and how pinned files are fetched.

``paths`` (the cache folder, ``$AHAZERO_CACHE``; ``file_kind`` for readers' errors),
``fetch`` (sha256-pinned downloads from the hub or from PyPI packages), and what every wing
needs of files: ``atomic_files`` (a result file written whole or not at all) and
``weight_files`` (are a model's weight files whole, read from their headers). It may import
nothing else of ahazero: every other wing uses it.
"""
