"""mpkit: plumbing for the Machine Perception companion notebooks.

Device, seeding and run profile (`env`), offline data (`data`), one supervised training loop
(`train`), plots (`plot`), numeric oracles (`check`), sample-quality metrics (`metrics`) and
exercises (`exercises`). The ideas the course
teaches live in the notebooks, not here.
"""
from mpkit import check, data, env, exercises, metrics, plot, train
from mpkit.check import assert_close, grad_check, mc_mean, require_tensor
from mpkit.data import Split, batches, digits, gen2d, toy2d
from mpkit.env import Timer, device, is_quick, profile, seed
from mpkit.train import History, accuracy, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "check", "data", "env", "exercises", "metrics", "plot", "train",
    "assert_close", "grad_check", "mc_mean", "require_tensor",
    "Split", "batches", "digits", "gen2d", "toy2d",
    "Timer", "device", "is_quick", "profile", "seed",
    "History", "accuracy", "evaluate", "fit",
]
