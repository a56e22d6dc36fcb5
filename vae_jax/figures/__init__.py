"""Figures drawn from a trained model's params and a data set; nothing here trains."""
