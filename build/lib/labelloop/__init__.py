"""labelloop: the data supply chain as a loop.

ingest -> prelabel -> selection -> annotate -> quality -> versions -> training -> remediate
"""

__version__ = "0.1.0"
