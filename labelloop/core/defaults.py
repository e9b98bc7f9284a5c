"""Project defaults that more than one stage reads: the store's column defaults and the
simulations that replay what a project does with them."""

CALIBRATION_SHARE = 0.1  # of each batch, drawn uniformly from the non-critical pool
