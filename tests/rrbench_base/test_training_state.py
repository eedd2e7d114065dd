"""The shared training state: a save/load round trip continues training exactly, torn or foreign states fail."""

from __future__ import annotations

import json

import pytest
import torch

from rrbench_base.training_state import (JSON_FILE, TENSORS_FILE, TrainingStateError, has_training_state,
                                         load_training_state, save_training_state)


def _setup(seed: int = 0):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.linspace(-1, 1, p.numel()).reshape(p.shape) * (i + 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler, torch.Generator().manual_seed(seed)


def _step(model, optimizer, scheduler, generator) -> float:
    x = torch.randn(5, 4, generator=generator)
    loss = model(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


def test_round_trip_continues_exactly_as_an_uninterrupted_run(tmp_path):
    straight = _setup()
    expected = [_step(*straight) for _ in range(5)]

    first = _setup()
    losses = [_step(*first) for _ in range(2)]
    model, optimizer, scheduler, generator = first
    save_training_state(tmp_path, optimizer, {"step": 2, "history": [1.5]}, scheduler=scheduler, module=model,
                        random_states={"generator": generator.get_state()}, arrays={"extra": torch.arange(3)})
    assert has_training_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [JSON_FILE, TENSORS_FILE]  # no temporary files left

    model, optimizer, scheduler, generator = _setup(seed=99)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    state = load_training_state(tmp_path, optimizer, scheduler=scheduler, module=model)
    generator.set_state(state.random_states["generator"])
    assert state.counters == {"step": 2, "history": [1.5]} and torch.equal(state.arrays["extra"], torch.arange(3))
    assert isinstance(optimizer.param_groups[0]["betas"], tuple)
    losses += [_step(model, optimizer, scheduler, generator) for _ in range(3)]
    assert losses == expected


def test_a_torn_state_a_missing_file_and_a_newer_format_are_errors(tmp_path):
    model, optimizer, scheduler, _ = _setup()
    _step(model, optimizer, scheduler, torch.Generator())
    save_training_state(tmp_path, optimizer, {"step": 1})
    other = tmp_path / "other"
    _step(model, optimizer, scheduler, torch.Generator())
    save_training_state(other, optimizer, {"step": 2})
    (tmp_path / TENSORS_FILE).write_bytes((other / TENSORS_FILE).read_bytes())  # JSON of step 1, tensors of 2
    with pytest.raises(TrainingStateError, match="sha256"):
        load_training_state(tmp_path, optimizer)
    meta = json.loads((other / JSON_FILE).read_text())
    (other / JSON_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(TrainingStateError, match="newer"):
        load_training_state(other, optimizer)
    (other / TENSORS_FILE).unlink()
    assert not has_training_state(other)
    with pytest.raises(TrainingStateError, match="not a resumable"):
        load_training_state(other, optimizer)


def test_a_stage2_state_written_before_the_format_had_a_version_still_loads(tmp_path):
    model, optimizer, scheduler, generator = _setup()
    _step(model, optimizer, scheduler, generator)
    save_training_state(tmp_path, optimizer, {"step": 1}, scheduler=scheduler, module=model,
                        random_states={"torch": torch.get_rng_state(), "generator": generator.get_state()})
    meta = json.loads((tmp_path / JSON_FILE).read_text())
    (tmp_path / JSON_FILE).write_text(json.dumps({k: meta[k] for k in ("optimizer", "scheduler", "counters")}))
    fresh, fresh_optimizer, fresh_scheduler, _ = _setup(seed=1)
    state = load_training_state(tmp_path, fresh_optimizer, scheduler=fresh_scheduler, module=fresh)
    assert state.counters == {"step": 1} and set(state.random_states) == {"torch", "generator"}
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters()))
    assert fresh_scheduler.last_epoch == scheduler.last_epoch
