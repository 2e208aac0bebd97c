"""The notebooks here are submissions that tests/test_grading.py grades, not notebooks for nbval to run."""
collect_ignore_glob = ["*.ipynb"]
