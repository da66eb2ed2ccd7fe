"""The demo page: a photo (upload or the browser's camera) → every face boxed on it, and per face its label,
probability bars and Grad-CAM overlay. Built with gradio (``pip install -e '.[demo]'``).

Nothing on the page needs the internet: no analytics, no share link, system fonts instead of the default
theme's Google font, and the page template's links to other hosts removed (``offline.py``), so the browser
loads everything from the demo's own server.

A problem with a photo (not an image, no face found) is shown in the page's status line and the server keeps
serving; the upload is read by the project's own decoder (``images.read_image``: EXIF orientation, alpha,
16-bit), not by gradio's, so the message says what is wrong with the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from fer_lightning.demo.analysis import FaceAnalyser, FaceResult
from fer_lightning.demo.offline import LocalOnlyPage
from fer_lightning.errors import FERError, ImageReadError

log = logging.getLogger(__name__)

TITLE = "Facial expression recognition"
INTRO = (
    f"# {TITLE}\n"
    "Upload a photo or take one with the camera. Every face found is boxed and classified into one of seven "
    "expressions; the Grad-CAM overlay (red = most important) shows which parts of the 48x48 face the "
    "network used for its answer."
)
ASK_FOR_PHOTO = "Upload a photo or take one with the camera."
# system font stacks: the default theme would fetch its font from fonts.googleapis.com
THEME = gr.themes.Default(
    font=("ui-sans-serif", "system-ui", "sans-serif"), font_mono=("ui-monospace", "monospace")
)
# uploads and results are files in gradio's cache: drop those older than an hour, checked hourly
CACHE_CLEANUP = (3600, 3600)


def status_line(faces: list[FaceResult], detector: str) -> str:
    if not faces:
        return (
            f"No face found in this photo (detector: {detector}). Try a photo with a frontal face at "
            "least about 40 pixels wide."
        )
    return (
        f"{len(faces)} face{'s' if len(faces) > 1 else ''} found (detector: {detector}), largest first: "
        + "; ".join(f.caption for f in faces)
        + "."
    )


def analyse_upload(
    analyser: FaceAnalyser, upload: dict[str, Any] | None
) -> tuple[Any, str, list[FaceResult]]:
    """(boxed photo for ``gr.AnnotatedImage``, status line, faces) for the image component's raw value.

    ``upload`` is gradio's file record (``path`` in gradio's upload cache, ``orig_name`` as the user named
    it), or ``None`` when the photo was cleared."""
    if not upload or not upload.get("path"):
        return None, ASK_FOR_PHOTO, []
    name = upload.get("orig_name") or Path(upload["path"]).name
    try:
        result = analyser.analyse(upload["path"])
    except ImageReadError as e:  # the message would name gradio's cache path: name the user's file instead
        log.warning("%s: %s", name, e.reason)
        return None, f"Could not read {name}: {e.reason}.", []
    except FERError as e:
        log.warning("%s: %s", name, e)
        return None, f"Could not analyse {name}: {e}", []
    status = status_line(result.faces, analyser.detector_name)
    log.info("%s: %s", name, status)
    return (result.image, result.boxes()), status, result.faces


def face_rows(faces: list[FaceResult]) -> None:
    """One row per face: crop | Grad-CAM strip, and its probability bars (a ``gr.Label``)."""
    for face in faces:
        with gr.Row(equal_height=True):
            gr.Image(
                face.view,
                label=f"face {face.number}: crop | Grad-CAM for {face.label}",
                interactive=False,
                scale=2,
            )
            gr.Label(
                face.probabilities,
                label=f"face {face.number}",
                num_top_classes=len(face.probabilities),
                elem_classes=["face-label"],
                scale=1,
            )


def build_app(analyser: FaceAnalyser) -> gr.Blocks:
    """The page; serve it with :func:`serve`."""
    with gr.Blocks(title=TITLE, theme=THEME, analytics_enabled=False, delete_cache=CACHE_CLEANUP) as app:
        gr.Markdown(INTRO)
        with gr.Row():
            photo = gr.Image(sources=["upload", "webcam"], type="filepath", label="photo", elem_id="photo")
            boxed = gr.AnnotatedImage(label="faces found", elem_id="faces")
        # plain text, not Markdown: a file name like my_photo_1_.png must not turn into formatting
        status = gr.Textbox(ASK_FOR_PHOTO, label="status", interactive=False, elem_id="status")
        faces = gr.State([])
        # preprocess=False: the handler gets the uploaded file itself (gradio has already checked that it
        # lies in its upload folder) and decodes it with images.read_image, so an unreadable file becomes a
        # status line instead of gradio's generic error; one call at a time (FaceAnalyser is not thread-safe)
        photo.change(
            lambda upload: analyse_upload(analyser, upload),
            inputs=photo,
            outputs=[boxed, status, faces],
            preprocess=False,
            concurrency_limit=1,
            api_name="analyse",
        )
        gr.render(inputs=faces)(face_rows)
    return app


def serve(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve ``app`` on ``host:port`` until interrupted: the page without links to other hosts
    (:class:`LocalOnlyPage`), never a share link, never server-side rendering (which would need Node.js)."""
    app.queue().launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        enable_monitoring=False,
        app_kwargs={"middleware": [Middleware(LocalOnlyPage)]},
    )
