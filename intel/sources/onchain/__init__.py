"""On-chain whale flows: exchange address labels, the Blockchain.com client and feed, and the
persistent hourly window they fill (live mode's whale source)."""
