"""Stage-1 contrastive training (multi-positive InfoNCE, learnable temperature, gradient caching,
memory queue, all-gather under accelerate, hard-negative batches, LiT feature caching, resumable
checkpoints, validation with best-checkpoint selection).

Entry point: :func:`stage1_dual.training.trainer.train_dual_encoder` with a
:class:`~stage1_dual.training.config.TrainConfig` and :class:`~stage1_dual.training.data.TrainingSplit`\\ s.
"""
