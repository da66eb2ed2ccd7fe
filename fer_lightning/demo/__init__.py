"""The browser demo of ``scripts/demo.py``: ``analysis.py`` turns one photo into boxes, probabilities and
Grad-CAM overlays (plain numpy, no web framework: usable from Python); ``app.py`` lays them out on a gradio
page (the optional ``demo`` extra)."""
