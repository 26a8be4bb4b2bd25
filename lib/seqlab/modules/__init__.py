"""Blocks the model families share: word embeddings and pre-trained vectors, dropout, attention, losses."""
