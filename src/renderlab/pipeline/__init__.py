"""The render pipeline: start (quota + row, one transaction), run, recover, cancel."""
