"""Plotly figure builders. One module per page family:

* ``selection`` — SA animation, gains, image masks (Sequential Attention page)
* ``compare``   — method comparison charts (Compare page)
* ``sparsity``  — SA++ block masks, attention patterns, latency (Sparsity page)
* ``structured`` — SA++ unit masks, survivors, quality vs latency (Structured pruning page)
"""
