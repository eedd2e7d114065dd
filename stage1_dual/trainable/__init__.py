"""Trainable dual encoders: towers chosen by name, projections, a learnable temperature, checkpoint dirs.

- :class:`~stage1_dual.trainable.model_config.DualModelConfig` (architecture as data);
- :class:`~stage1_dual.trainable.model.DualEncoderModel` (towers + projections + logit scale);
- ``IMAGE_TOWERS`` / ``TEXT_TOWERS`` (plain dicts of tower constructors);
- :func:`~stage1_dual.trainable.checkpoint.save_model_dir` / ``load_model_dir`` (config.json +
  model.safetensors), loaded for retrieval by the ``rrbench_dual`` encoder backend.
"""
