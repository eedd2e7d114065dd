"""Scripts of the study ``results/flickr8k_lite_stage2_bounds/`` (see its README.md)."""
