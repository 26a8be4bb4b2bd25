"""seqlab: sequence models for text and molecules, trained, tuned and served on Ray."""

__version__ = "0.1.0"
