"""The cache wing: where fetched and converted files live, and how pinned files are fetched.

``paths`` (the cache folder, ``$AHAZERO_CACHE``; ``file_kind`` for readers' errors) and
``fetch`` (sha256-pinned downloads from the hub or from PyPI packages). It may import nothing
else of ahazero: models, tasks and config use it.
"""
