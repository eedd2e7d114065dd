"""Scripts of the study ``results/flickr8k_lite_gpu_schedules/`` (see its README.md)."""
