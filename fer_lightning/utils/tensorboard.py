"""Read a run's TensorBoard scalars back (tests, result tables, quick looks at background runs)."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file under ``run_dir`` (oldest file first)."""
    series: dict[str, list[tuple[int, float]]] = {}
    files = sorted(Path(run_dir).rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime)
    for event_file in files:
        acc = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return series


def read_hparams(run_dir: str | Path) -> tuple[dict[str, object], list[str]]:
    """(hyper-parameters, metric tags) of the HParams record in ``run_dir``'s event files, decoded from the
    hparams plugin's own records (``_hparams_/session_start_info`` and ``_hparams_/experiment``) as
    TensorBoard's HParams tab reads them; ``({}, [])`` when the run wrote none."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.plugins.hparams import plugin_data_pb2

    hparams: dict[str, object] = {}
    metrics: list[str] = []
    for event_file in sorted(Path(run_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(event_file))
        acc.Reload()
        try:
            contents = acc.PluginTagToContent("hparams").values()
        except KeyError:  # this file of the run holds no hparams records
            continue
        for content in contents:
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for name, value in data.session_start_info.hparams.items():
                    hparams[name] = MessageToDict(value)  # a struct Value: the number, text or bool
            if data.HasField("experiment"):
                metrics += [m.name.tag for m in data.experiment.metric_infos]
    return hparams, metrics
