"""Evidence formats (docs/evidence.md): receipts, Merkle anchors, custody entries, packages.

Pure formats and their checks, with no database and no HTTP, so that the
offline verifier carries only what it needs.
"""
