"""Classification: linear probe, fine-tune and zero-shot heads, labels, loss, thresholds, predictions."""
