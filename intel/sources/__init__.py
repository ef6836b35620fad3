"""Data sources, one module each, behind the small interfaces in `intel.sources.base`."""
