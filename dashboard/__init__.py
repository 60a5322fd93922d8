"""The eventscope dashboard: a Streamlit app over the store and the findings (see app.py)."""
