"""Pure renderers: a Signal (and its snapshot) into text or a PNG chart; no I/O here.

Import the submodule you need: `bot.render.chart` pulls in matplotlib, `bot.render.text` does not.
"""
