"""Sentiment engines: text in, label and class probabilities out, behind one interface."""
