"""How good is a selection, after the fact: retraining on top-k picks, agreement between methods,
plain-language narration, and the side-by-side comparison the Compare page shows.

``retrain`` (accuracy vs k) · ``agreement`` (Jaccard / Spearman / recovery) ·
``narrative`` (one sentence per step) · ``compare`` (run several methods, evaluate them).
Selection-time scoring (the refit of a subset while selecting) lives in :mod:`seqattn.scoring`.
"""
