"""Export a checkpoint's network to ONNX: python scripts/export.py [ckpt_path=...] [format=onnx] [out=...]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: --help and --hydra-help print without loading torch
    from fer_lightning.tasks import export

    with user_errors():
        onnx_path, json_path, facts = export.run(cfg)
    print(
        f"wrote {onnx_path} and {json_path}: {facts['network']} ({facts['parameters']:,} parameters), "
        f"classes {', '.join(facts['classes'])}; ONNX Runtime vs torch on {facts['check_faces']} probe "
        f"faces: max probability difference {facts['check_max_probability_difference']:.1e}"
    )


if __name__ == "__main__":
    main()
