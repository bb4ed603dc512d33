"""Offline training: labelled tweets in, tracked sentiment models and the exported champion out."""
