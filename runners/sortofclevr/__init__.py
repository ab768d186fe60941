"""The parts of runners/sort_of_clevr.py: scenes and data from the upstream generator,
main.py's training loop, evaluation per question type, robustness sets, plots."""
