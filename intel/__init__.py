"""Market intelligence: sources, agents and the coordinator that turn market data into signals.

`intel` never imports `bot`.
"""
