"""One ``run(cfg)`` per script: the only package code that reads a Hydra config."""
