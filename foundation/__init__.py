"""The foundation every layer stands on: settings, the catalog model and loader, SQL naming, Parquet writing.

Imports nothing of the project's other packages (tests/test_layers.py and `make lint` check it).
"""
