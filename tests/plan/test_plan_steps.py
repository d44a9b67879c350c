"""Steps, epochs, saves and samples follow sd-scripts' train_network.py arithmetic."""

from __future__ import annotations

import pytest

from loratrain.plan.steps import balance_regularisation, batches_for_buckets, schedule


def test_guide_example_1000_images_batch_10_for_10_epochs_is_100_steps_per_epoch():
    batches = batches_for_buckets([1000], 10)
    plan = schedule(batches, max_train_epochs=10)
    assert (plan.steps_per_epoch, plan.epochs, plan.total_steps) == (100, 10, 1000)
    assert plan.steps_from_epochs


def test_reference_example_six_buckets_of_50_items_make_10_batches():
    # 4 images x 10 repeats + 2 images x 5 repeats, each image in its own bucket, batch 8.
    assert batches_for_buckets([10, 10, 10, 10, 5, 5], 8) == 10


def test_reference_example_grad_accum_6_and_400_steps_gives_200_epochs_with_saves_and_samples():
    plan = schedule(
        10, gradient_accumulation_steps=6, max_train_steps=400, save_every_n_epochs=50, sample_every_n_steps=100
    )
    assert (plan.steps_per_epoch, plan.epochs, plan.total_steps) == (2, 200, 400)
    assert [(s.epoch, s.step, s.kind) for s in plan.saves] == [
        (50, 100, "epoch"),
        (100, 200, "epoch"),
        (150, 300, "epoch"),
        (200, 400, "final"),
    ]
    assert [s.step for s in plan.samples] == [100, 200, 300, 400]


def test_max_train_epochs_wins_over_max_train_steps():
    plan = schedule(10, max_train_steps=5, max_train_epochs=3)
    assert (plan.total_steps, plan.epochs) == (30, 3)


def test_two_processes_halve_the_steps_per_epoch_rounding_up():
    plan = schedule(11, num_processes=2, max_train_epochs=4)
    assert (plan.batches_per_process, plan.steps_per_epoch, plan.total_steps) == (6, 6, 24)


def test_a_step_budget_that_ends_mid_epoch_still_counts_that_epoch():
    plan = schedule(10, max_train_steps=25)
    assert (plan.epochs, plan.saves[-1].step, plan.saves[-1].epoch) == (3, 25, 3)


def test_epoch_saves_skip_the_last_epoch_which_gets_the_final_save():
    plan = schedule(5, max_train_epochs=4, save_every_n_epochs=2)
    assert [(s.epoch, s.kind) for s in plan.saves] == [(2, "epoch"), (4, "final")]


def test_save_last_n_epochs_marks_older_files_as_deleted():
    plan = schedule(1, max_train_epochs=10, save_every_n_epochs=1, save_last_n_epochs=2)
    kept = [s.epoch for s in plan.saves if s.kind == "epoch" and s.kept]
    assert kept == [8, 9]


def test_save_every_n_steps_with_last_n_steps_keeps_the_recent_ones():
    plan = schedule(100, max_train_steps=50, save_every_n_steps=10, save_last_n_steps=30)
    assert [(s.step, s.kept) for s in plan.saves if s.kind == "step"] == [
        (10, False),
        (20, True),
        (30, True),
        (40, True),
        (50, True),
    ]


def test_save_n_epoch_ratio_sets_the_epoch_interval():
    plan = schedule(1, max_train_epochs=10, save_n_epoch_ratio=3)
    assert [s.epoch for s in plan.saves if s.kind == "epoch"] == [3, 6, 9]


def test_sample_every_n_epochs_wins_over_steps_and_includes_the_last_epoch():
    plan = schedule(4, max_train_epochs=4, sample_every_n_epochs=2, sample_every_n_steps=1, sample_at_first=True)
    assert [(s.step, s.epoch, s.kind) for s in plan.samples] == [(0, 0, "first"), (8, 2, "epoch"), (16, 4, "epoch")]


def test_no_prompt_file_means_no_samples():
    assert schedule(4, sample_every_n_steps=1, sampling=False).samples == []


def test_empty_dataset_has_no_schedule():
    with pytest.raises(ValueError):
        schedule(0)


@pytest.mark.parametrize(
    "train,reg,expected",
    [
        (10, [1, 1, 1], [4, 3, 3]),  # three reg images repeated round-robin up to 10 items
        (4, [2, 2, 2], [2, 2, 0]),  # more reg items than train items: the last image goes unused
        (6, [5], [6]),
        (0, [1, 1], [0, 0]),
    ],
)
def test_regularisation_images_are_balanced_to_the_training_item_count(train, reg, expected):
    assert balance_regularisation(train, reg) == expected
