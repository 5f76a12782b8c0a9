"""ahazero: toy-scale DeepSeek-R1-Zero with TRL's GRPOTrainer and rule-based rewards."""

__version__ = "0.1.0"
