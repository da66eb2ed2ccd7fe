"""Photos → detected, cropped 48×48 faces → FER2013-style CSV, and the ``data=photos`` source."""
