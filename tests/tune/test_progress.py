"""A search's story (seqlab.tune.progress.TrialStory), driven the way Tune's controller calls it."""

from types import SimpleNamespace

from seqlab.tune.progress import TrialStory


def trial(i: int, hidden: int, status: str = "RUNNING"):
    return SimpleNamespace(trial_id=f"t{i}", config={"hidden": hidden, "dropout": 0.1}, status=status,
                           error_file=None)


def test_each_trial_is_told_started_by_epoch_and_ended_with_the_best_so_far(capsys):
    story = TrialStory(total=3, epochs=2, metric="val_macro_f1", mode="max", concurrency=1)
    a, b = trial(1, 64), trial(2, 32)
    story.on_step_begin(0, [a])
    story.on_trial_start(0, [a], a)
    story.on_trial_result(0, [a], a, {"epoch": 1, "val_macro_f1": 0.5})
    story.on_trial_result(0, [a], a, {"epoch": 2, "val_macro_f1": 0.6})
    story.on_trial_complete(0, [a], a)
    story.on_trial_start(0, [a, b], b)
    story.on_trial_result(0, [a, b], b, {"epoch": 1, "val_macro_f1": 0.4})
    story.on_trial_complete(0, [a, b], b)  # ASHA stopped it at its first rung
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[seqlab] trial 1/3 h064-do0.1000 started"
    assert lines[2] == "[seqlab] trial 1/3 h064-do0.1000 epoch 2/2: val_macro_f1 0.6000"
    assert lines[3].startswith("[seqlab] trial 1/3 h064-do0.1000 finished in 0s: val_macro_f1 0.6000; 1 of 3 done, "
                               "best trial 1 (val_macro_f1 0.6000), about ")
    assert lines[-1].startswith("[seqlab] trial 2/3 h032-do0.1000 stopped by ASHA after epoch 1 in 0s: "
                                "val_macro_f1 0.4000; 2 of 3 done, best trial 1 (val_macro_f1 0.6000)")


def test_a_resumed_search_counts_the_trials_that_ended_before(capsys):
    story = TrialStory(total=4, epochs=2, metric="val_loss", mode="min", concurrency=2)
    done = [trial(1, 8, "TERMINATED"), trial(2, 16, "ERROR")]
    story.on_step_begin(0, [*done, trial(3, 32)])
    story.on_step_begin(1, [*done, trial(3, 32)])  # told once
    nxt = trial(3, 32)
    story.on_trial_start(1, [*done, nxt], nxt)
    story.on_trial_error(1, [*done, nxt], nxt)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["[seqlab] 2 of 4 trials ended before this search was resumed",
                     "[seqlab] trial 3/4 h032-do0.1000 started",
                     lines[2]]
    assert lines[2].startswith("[seqlab] trial 3/4 h032-do0.1000 failed; its error is in the full log and in its trial "
                               "folder; 3 of 4 done, about ")
