"""Selection: which unlabeled items humans should label next, and which are safe to auto-accept.

``selection.scores`` holds pure score functions over arrays, ``selection.strategies`` the one
registry of strategies by public name, ``selection.auto_accept`` the calibrated auto-accept
thresholds and their audit, and ``selection.simulate`` the offline label-efficiency simulation.
"""
