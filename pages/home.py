"""Home: what Sequential Attention is, which device is in use, how to start."""
from __future__ import annotations

import streamlit as st

from app_support.shell import require_app_shell
from app_support.state import current_device
from seqattn.device import describe_device, resolve_device

require_app_shell(__file__)  # first: the app's frame even when this page was opened on its own
st.title("Sequential Attention for feature selection")
st.markdown(
    """
**Sequential Attention** picks features one at a time, greedily, but without refitting a
model per candidate. A small network is trained with one *attention logit per feature*:
features not yet chosen share a softmax, chosen ones pass through with weight 1. After each
training phase the unchosen feature with the largest attention weight is selected, the
logits are reset, and training goes on. The result is a greedy forward selection at the
cost of roughly one training run (Yasuda et al., *Sequential Attention for Feature
Selection*, ICLR 2023); in the linear case its picks coincide with Orthogonal Matching
Pursuit.
"""
)

device_choice = current_device()
try:
    device_text = describe_device(resolve_device(device_choice))
except ValueError as exc:
    device_text = f"unavailable ({exc})"
st.markdown(f"**Device in use:** {device_text} — setting `{device_choice}` (change it in the sidebar).")

st.subheader("Quick start")
st.markdown(
    """
1. **Data** — pick a built-in data set (digits is a good first choice) or upload a
   CSV / TSV / Excel / parquet / h5ad file and choose the target column (text columns become feature groups).
2. **Sequential Attention** — press *Run*; watch the picks appear, play the animation,
   read the step-by-step explanation, pin or ban features and re-run, download the result.
3. **Compare** — set SA beside OMP, SHAP, true greedy selection and simple filters.
4. **Sparsity** — the same attention idea applied to weight blocks (SA++) and attention maps (PSA).
5. **Structured pruning** — SA++ on a small transformer: which attention heads and MLP blocks to keep, with
   measured latency of the smaller model.

Single-cell data (an h5ad upload or the built-in `pbmc68k_reduced`): after step 2, the
**Gene panel** page shows the selected genes per cell type (dot plot, heatmap), their held-out
accuracy and how they compare with classic t-test marker genes.
"""
)
col_data, col_sa = st.columns(2)
col_data.page_link("pages/data.py", label="Start with the Data page", icon=":material/folder_open:")
col_sa.page_link("pages/sequential_attention.py", label="Sequential Attention", icon=":material/target:")
