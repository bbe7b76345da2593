"""What a run writes into its training folder: engine callbacks (metrics.jsonl, TensorBoard,
graphs, exports, checkpoints), status.json, checkpoints, architecture graphs and MLflow."""
