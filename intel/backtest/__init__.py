"""Backtesting: the engine, its metrics and the strategies over the shipped history."""
