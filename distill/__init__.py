"""distill: distilling large transducer ASR models into small ones with k2 and lhotse."""

__version__ = "0.1.0"
