"""Findings: what eventscope concludes from the store and the catalog.

One module per finding, each a set of pure functions over pandas DataFrames, the catalog model
and networkx graphs (no SQL, no boto3, no Streamlit). `load` is the one module that reads the
store; `frames` documents the DataFrame shapes every finding takes.
"""
