"""The base both stages and ``eval`` stand on: small, dependency-light pieces that would otherwise be written
twice (once per stage), because ``stage1_dual`` and ``stage2_rerank`` may not import each other or ``eval``.

``rrbench_base`` imports nothing from ``stage1_dual``, ``stage2_rerank`` or ``eval``.
"""
