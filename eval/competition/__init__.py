"""Competition mode (``rrbench compete``): the Chinese image-text retrieval competition format.

Training pairs ``ImageWordData.csv`` + ``ImageData/``; task 1 (text to image) writes ``result1.csv``,
task 2 (image to text) writes ``result2.csv`` (see DESIGN.md, "The competition format").
Modules: ``config`` (CompeteConfig), ``task_files`` (reading the task CSVs), ``finetune`` (optional
stage-1 fine-tuning), ``retrieval`` (rankings, rerank, metrics), ``result_files`` (writing and checking
the result files), ``holdout`` (building task files from held-out training pairs), ``runner``
(``run_compete``).
"""
