"""The generic engine: trainer/evaluator over ``monai.engines``, handlers (one per file), determinism,
step budgets, out-of-distribution scoring, shared metrics and the export wrapper."""
