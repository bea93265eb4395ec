"""Shared `small` and `smoke` scales: overrides of tasks, epochs and data limits (the `paper` scale has none)."""

MNIST_SMOKE = {"tasks": 2, "epochs_per_task": 1, "train_limit": 500, "test_limit": 200}
LANGUAGE_SMOKE = {"tasks": 2, "epochs_per_task": 1, "train_limit": 200, "test_limit": 100}

# Full data and the paper's batch size, so each epoch takes the paper's number of steps; fewer tasks/epochs.
MNIST_RESHUFFLE_SMALL = {"tasks": 20, "epochs_per_task": 10}
MNIST_BINARY_SMALL = {"tasks": 25, "epochs_per_task": 15}
LANGUAGE_SMALL = {"tasks": 20, "epochs_per_task": 10}

MNIST_NOTES = {
    "paper": "the paper's 50 tasks x 30 epochs on all 60,000 digits",
    "small": "all digits, the paper's batch size, fewer tasks and epochs: shows the early decline of the "
             "MLP's per-task accuracy; too short to show where the decline levels off",
    "smoke": "seconds: checks the plumbing, shows nothing about plasticity",
}
LANGUAGE_NOTES = {
    "paper": "the paper's 100 tasks x 30 epochs (the paper used Tatoeba's 2,600 sentences per language; "
             "the offline corpus has 800)",
    "small": "20 tasks x 10 epochs: shows whether the GRU's per-task accuracy declines over the first tasks; "
             "cannot show the long-run level the paper reports after 100 tasks",
    "smoke": "seconds: checks the plumbing, shows nothing about plasticity",
}
