"""Video files and cameras: open a source (``source``), follow faces between detections (``tracking``),
classify and smooth per track (``pipeline``, ``smoothing``), and write the results (``records``: CSV,
``timeline``: plots, ``annotate``: the annotated video). From Python, use ``Predictor.predict_video``."""

from fer_lightning.video.pipeline import FrameResult, TrackedFace, predict_frames
from fer_lightning.video.source import Frame, VideoSource, open_video

__all__ = ["Frame", "FrameResult", "TrackedFace", "VideoSource", "open_video", "predict_frames"]
