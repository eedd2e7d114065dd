"""The accelerator benchmark runs end to end on CPU with the tiny config and reports consistent numbers."""

import torch

from stage2_rerank.bench.device import DeviceBenchOptions, interleaved_precision_timings, run_device_benchmark


def test_device_benchmark_on_cpu_tiny():
    options = DeviceBenchOptions(small=True, device="cpu", images=6, captions=20, depth=3, stock_pairs=8,
                                 lavis_queries=4, parity_queries=10)
    result = run_device_benchmark(options, torch.bfloat16)
    assert result["precision"] == {"qformer": "bf16", "vision": "fp32"}
    assert result["workload"]["candidate_slots_both_directions"] == 20 * 3 + 6 * 3
    assert result["stock_forward"]["pairs"] == 8
    assert result["lavis_loop"]["pairs"] == 4 * 3 + 1 * 3
    assert result["ratios"]["c_over_a"] > 0
    parity = result["parity_vs_fp32"]["itm"]
    assert parity["n_pairs"] == result["workload"]["distinct_pairs"]
    assert 0 < parity["max_abs_error"] < 0.1  # bf16 differs from fp32, but only slightly
    assert 0 <= parity["top1_agreement"] <= 1


def test_interleaved_timings_on_cpu_tiny():
    options = DeviceBenchOptions(small=True, device="cpu", images=4, captions=10, depth=2)
    result = interleaved_precision_timings(options, rounds=1, profile=True)
    assert set(result["seconds"]) == {"fp32", "bf16"}  # no fp16 on CPU
    assert result["seconds"]["fp32"][0]["total"] > 0
    assert "aten::" in result["profile_by_cpu_time"]
