"""Explanations of FER predictions: Grad-CAM family (``gradcam``), review panels (``panels``), photo
review."""
