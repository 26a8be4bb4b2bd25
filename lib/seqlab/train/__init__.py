"""Training: the driver (prepare data once, build a TorchTrainer, fit) and the one loop every worker runs."""
