"""Photos → 48x48 FER2013 CSV: python scripts/preprocess.py input_dir=<folder> output=<file.csv> [detector=...]."""

from fer_lightning.utils.runtime import bootstrap, user_errors

bootstrap(__file__)

import hydra
from omegaconf import DictConfig

from fer_lightning.faces.pipeline import instantiate_setting, preprocess_folder, require_rows, summarize


@hydra.main(version_base="1.3", config_path="../conf", config_name="preprocess")
def main(cfg: DictConfig) -> None:
    with user_errors():
        report = preprocess_folder(
            cfg.input_dir, cfg.output, detector=instantiate_setting(cfg, "detector"),
            labels=instantiate_setting(cfg, "labels"), split=cfg.split, seed=cfg.seed,
            test_fraction=cfg.test_fraction, usage_from_name=cfg.usage_from_name, no_face=cfg.no_face,
            cache_dir=cfg.cache_dir, use_cache=cfg.use_cache, workers=cfg.workers,
            progress=cfg.progress, extensions=cfg.extensions,
        )
        print(summarize(report))
        require_rows(report)  # after the summary: it says why no row was written


if __name__ == "__main__":
    main()
