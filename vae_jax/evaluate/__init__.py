"""Evaluation: one metric per file, each a pure function of (graphdef, params, data, key)."""
