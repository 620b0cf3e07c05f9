"""`classify` on many files: inputs expanded (`inputs`), decoded and preprocessed in worker
processes (`tasks`, `workers`), classified as a stream in order (`stream`), written as text,
JSON, JSON lines or CSV (`outputs`); `classify` keeps it all as lists for the Python API.
"""
