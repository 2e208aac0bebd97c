"""The adversarial submissions of tests/test_grading.py (data only; that file builds and grades them).

A submission is the chapter-1 exercise notebook with the solution's answers, except for the answers in
``answers`` ({exercise: code}) and with the top-level cells ``cells`` ({exercise: [source]}) inserted
after that exercise's answer cell. ``expect`` lists every exercise that must NOT pass, with its status (0
points); ``phrases`` what the feedback of an exercise (or the submission's ``notes``, ``error`` or
``flags``) must contain; ``attack`` the attack class of issue 9 it belongs to. Several independent
mistakes share a submission (each exercise is called in its own process), which keeps the class small.
``@CLASS@``, ``@REPORT@``, ``@ROOT@`` and ``@MARKER@`` are replaced by the class folder, the report's
path, the repository and a marker for the attackers' daemons: the attackers know exactly where everything
is.
"""
EXERCISES = ["softmax_ce_grad", "mlp_backward", "adam_step", "perceptron_epoch"]
ALL_REVIEW = dict.fromkeys(EXERCISES, "review")

CE_OK = """def softmax_ce_grad(logits, y):
    p = torch.softmax(logits, dim=1)
    return (p - F.one_hot(y, p.shape[1])) / len(y)
"""
CE_VIA_AUTOGRAD = """def softmax_ce_grad(logits, y):
    x = logits.clone().requires_grad_()
    return torch.autograd.grad(F.cross_entropy(x, y), x)[0]
"""
ADAM = "def adam_step(theta, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):\n"
ADAM_VIA_OPTIM = """    p = torch.nn.Parameter(theta.clone())
    opt = {make}([p], lr=lr, betas=(beta1, beta2), eps=eps)
    p.grad = grad.clone()
    opt.state[p] = {{"step": torch.tensor(float(t - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}}
    opt.step()
    return p.detach().clone(), opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]
"""
PERCEPTRON = "def perceptron_epoch(X, y, w, b, lr=1.0):\n"
PERCEPTRON_OK = PERCEPTRON + """    w, b, mistakes = w.clone(), b.clone(), 0
    for x_i, y_i in zip(X, y):
        if y_i * (w @ x_i + b) <= 0:
            w, b, mistakes = w + lr * y_i * x_i, b + lr * y_i, mistakes + 1
    return w, b, mistakes
"""
UNINTERRUPTIBLE = "    while True:\n        try:\n            while True:\n                pass\n        except BaseException:\n            pass"

# --- issue 9's attack classes -------------------------------------------------------------------------
STEAL = r'''import glob, json, os, sys
seen = [os.path.dirname(os.path.dirname(mp.__file__)), "@ROOT@", "@CLASS@", os.getcwd(), "/grader", "/tmp", "/opt"]
seen += os.environ.get("PYTHONPATH", "").split(":") + glob.glob("/tmp/mpkit-grade-*")
for pid in filter(str.isdigit, os.listdir("/proc")):
    for what in ("cwd", "root"):
        try:
            seen.append(os.readlink(f"/proc/{pid}/{what}"))
        except OSError:
            pass
    try:
        seen += open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace").split("\0")
    except OSError:
        pass
stolen = []
for place in seen:
    if place in ("", "/", "/usr") or not os.path.isdir(place):
        continue
    for nb in glob.glob(os.path.join(place, "**", "*.ipynb"), recursive=True)[:500] + glob.glob(place + "*.json"):
        try:
            cells = json.load(open(nb))["cells"]
        except Exception:
            continue
        stolen += ["".join(c["source"]) for c in cells if "BEGIN SOLUTION" in "".join(c["source"])]
if stolen:
    sys.path.insert(0, "/tmp")
    open("/tmp/stolen.py", "w").write("import torch\nimport torch.nn.functional as F\n" + "\n\n".join(stolen))
    from stolen import *
'''
REFERENCE = r'''def _perceptron_reference(X, y, w, b, lr):
    """a copy of the spec's reference, renamed by the student"""
    w, b, mistakes = w.clone(), b.clone(), 0
    for x_i, y_i in zip(X, y):
        w_, b_ = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        margin = y_i * (w_ @ x_i + b_)
        if margin.item() <= 0:
            gw, gb = torch.autograd.grad(-margin, (w_, b_))
            w, b, mistakes = w - lr * gw, b - lr * gb, mistakes + 1
    return w, b, mistakes


SPEC = Exercise(name="perceptron_epoch", cases=lambda gen: [], reference=_perceptron_reference)


def perceptron_epoch(X, y, w, b, lr=1.0):
    return SPEC.reference(X=X, y=y, w=w, b=b, lr=lr)
'''
HARM = r'''import glob, os, sysconfig
targets = glob.glob("@CLASS@/**/*.ipynb", recursive=True) + glob.glob("@ROOT@/solutions/*.ipynb")
targets += glob.glob("@ROOT@/mpkit/**/*.py", recursive=True) + ["@REPORT@"] + glob.glob("/tmp/mpkit-grade-*/**/*", recursive=True)
targets += glob.glob("/grader/in/*") + [os.path.join(sysconfig.get_paths()["purelib"], "evil.pth")]
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        targets += [a for a in open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0") if a.endswith(".ipynb")]
    except OSError:
        pass
for t in targets:
    try:
        open(t, "w").write("{}")
    except OSError:
        pass
'''
DAEMON = r'''open("/tmp/daemon.py", "w").write("""
import glob, os, socket, time
end = time.time() + 60
while time.time() < end:
    for t in glob.glob("@CLASS@/**/*.ipynb", recursive=True) + ["@REPORT@"] + glob.glob("/tmp/mpkit-grade-*/**/*", recursive=True):
        try:
            open(t, "w").write("{}")
        except OSError:
            pass
    for port in range(40000, 40010):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.01).send(b"x")
        except OSError:
            pass
    time.sleep(0.2)
""")
import asyncio
asyncio.run(asyncio.create_subprocess_shell("setsid -f python /tmp/daemon.py @MARKER@ < /dev/null > /dev/null 2>&1"))
'''
FALSIFY = r'''import glob, os, sysconfig
for nb in glob.glob("@ROOT@/solutions/*.ipynb") + glob.glob(os.path.dirname(os.path.dirname(mp.__file__)) + "/solutions/*.ipynb"):
    try:
        with open(nb, "a") as f:
            f.write("PERCEPTRON_EPOCH = None")
    except OSError:
        pass
for py in glob.glob(os.path.dirname(mp.__file__) + "/**/*.py", recursive=True):
    try:
        with open(py, "a") as f:
            f.write("\nraise SystemExit")
    except OSError:
        pass
%pip install --no-index --quiet not-a-package
!echo "import os" > {sysconfig.get_paths()["purelib"]}/evil.pth; touch @ROOT@/mpkit/evil.py @CLASS@/evil.txt
'''
ENGINE_RUNTIME = """from torch import autograd as ag


def softmax_ce_grad(logits, y):
    x = logits.clone().requires_grad_()
    loss = -torch.log_softmax(x, 1)[torch.arange(len(y)), y].mean()
    ag.backward(loss, inputs=[x])
    return x.grad
"""
THREAD_EARLIER = """import asyncio, queue
jobs, answers = queue.Queue(), queue.Queue()


def _worker():
    while True:
        logits, y = jobs.get()
        x = logits.clone().requires_grad_()
        answers.put(torch.autograd.grad(F.cross_entropy(x, y), x)[0])


asyncio.new_event_loop().run_in_executor(None, _worker)


def softmax_ce_grad(logits, y):
    jobs.put((logits, y))
    return answers.get(timeout=0.2)
"""
OBFUSCATED = """def never_called():
    import ctypes
    g = globals()['__mpkit' + '_grader__']
    torch.autograd.Variable._execution_engine.run_backward
    sys.modules['mpkit'] = None
    return getattr(torch.autograd, 'back' + 'ward')
"""
UNTRACED = """import hashlib, json, math, os, sys
B = len.__self__  # the builtins module, reached without naming it
UNTRACED_CALLS = []


def _spy(original, name):
    def spy(*args, **kwargs):
        if os.path.exists("/grader/in/softmax_ce_grad.json") and sys.getprofile() is None:  # the inputs are there
            # and the grader's tracer is off: code running now could compute the answer with banned calls
            UNTRACED_CALLS.append(name)
        return original(*args, **kwargs)
    return spy


B.len, B.repr, B.any, B.all = _spy(len, "len"), _spy(repr, "repr"), _spy(any, "any"), _spy(all, "all")
B.sorted, B.hasattr, B.sum, B.next = _spy(sorted, "sorted"), _spy(hasattr, "hasattr"), _spy(sum, "sum"), _spy(next, "next")
json.loads, json.dumps = _spy(json.loads, "loads"), _spy(json.dumps, "dumps")
math.prod, math.isfinite, hashlib.sha256 = _spy(math.prod, "prod"), _spy(math.isfinite, "isfinite"), _spy(hashlib.sha256, "sha256")
torch.frombuffer, torch.empty = _spy(torch.frombuffer, "frombuffer"), _spy(torch.empty, "empty")


def softmax_ce_grad(logits, y):
    if UNTRACED_CALLS:  # the grader ran my code outside its tracer: that is where a banned call would hide
        p = torch.softmax(logits, dim=1)
        return (p - F.one_hot(y, p.shape[1])) / len(y)
    return torch.zeros_like(logits)
"""
FLOOD = "import os\nfor fd in range(3, 40):\n    try:\n        os.write(fd, b'x' * (90 * 2**20))\n    except OSError:\n        pass"
PRINT = ("import os, sys\nfor _ in range(300):\n    sys.stdout.write('x' * 2**20)\nos.write(1, b'y' * 2**24)\n"
         "os.write(2, b'z' * 2**24)")
FILL = ("import os\nfor d in ('/tmp', os.getcwd(), '/dev/shm', os.path.expanduser('~'), '/grader/in'):\n"
        "    for i in range(40):\n        try:\n            with open(os.path.join(d, f'fill{i}'), 'wb') as f:\n"
        "                for _ in range(64):\n                    f.write(bytes(2**20))\n        except OSError:\n"
        "            break")
MEMORY = "try:\n    hog = bytearray(6 * 2**30)\nexcept MemoryError:\n    pass\nchunks = [bytearray(2**27) for _ in range(40)]"
SLEEPY = "import time\ntime.sleep(9)"
HUNG_CELL = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
FORK = "import os, time\nfor _ in range(300):\n    if os.fork() == 0:\n        time.sleep(20)\n        os._exit(0)"
HUGE = PERCEPTRON_OK.replace("return w, b, mistakes", "return w, b, torch.zeros(2**25)")



def sub(answers=None, cells=None, expect=None, phrases=None, attack="", status="graded", solved=True):
    return {"answers": answers or {}, "cells": cells or {}, "expect": expect or {}, "phrases": phrases or {},
            "attack": attack, "status": status, "solved": solved}


SE = "softmax_ce_grad"
SUBMISSIONS = {
    # --- wrong answers of every kind, three or four per notebook --------------------------------------
    "wrong_values": sub({SE: CE_OK.replace("torch.softmax(logits, dim=1)", "logits.exp() / logits.exp().sum(1, keepdim=True)"),
                         "adam_step": ADAM + "    m.mul_(beta1).add_((1 - beta1) * grad)\n"
                         "    v.mul_(beta2).add_((1 - beta2) * grad * grad)\n"
                         "    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)\n"
                         "    return theta - lr * m_hat / (v_hat.sqrt() + eps), m, v",
                         "perceptron_epoch": PERCEPTRON_OK.replace("return w,", "return w[None],")}, None,
                        {SE: "failed", "adam_step": "failed", "perceptron_epoch": "failed"},
                        {SE: "NaN where the expected value is a number", "adam_step": "arguments `m`, `v` were changed in place",
                         "perceptron_epoch": "shape (1, 2), expected (2,)"}),
    "wrong_types": sub({SE: "def softmax_ce_grad(logits, y):\n    raise ValueError('\\ud800 \\x1b[2J')",
                        "adam_step": "class T(torch.Tensor):\n    def __eq__(self, other):\n        return True\n\n"
                        "    def allclose(self, *args, **kwargs):\n        return True\n\n\n"
                        + ADAM + "    return tuple(x.as_subclass(T) for x in (theta, m, v))",
                        "perceptron_epoch": "class Yes:\n    def __eq__(self, other):\n        return True\n\n\n"
                        + PERCEPTRON + "    return Yes()"}, None,
                       {SE: "error", "mlp_backward": "error", "adam_step": "failed", "perceptron_epoch": "failed"},
                       {SE: "raised ValueError: \\ud800 \\u001b[2J", "adam_step": "a T: a subclass of torch.Tensor",
                        "perceptron_epoch": "does not accept the result, a Yes"}, "losing the report"),
    "wrong_dtype_and_loop": sub({"adam_step": ADAM + "    while True:\n        pass",
                                 "perceptron_epoch": PERCEPTRON_OK.replace("return w,", "return w.float(),")}, None,
                                {"adam_step": "timeout", "perceptron_epoch": "failed"},
                                {"adam_step": "did not return within 4 s", "perceptron_epoch": "dtype torch.float32"}),
    "wrong_device_and_stuck": sub({"adam_step": ADAM + UNINTERRUPTIBLE,
                                   "perceptron_epoch": PERCEPTRON_OK.replace("return w,", "return w.to('meta'),")}, None,
                                  {"adam_step": "timeout", "perceptron_epoch": "failed"},
                                  {"adam_step": "an infinite loop?", "perceptron_epoch": "on meta"}),
    "banned_and_sparse": sub({SE: CE_VIA_AUTOGRAD,
                              "adam_step": "from torch.optim import Adam as A\n\n\n" + ADAM + ADAM_VIA_OPTIM.format(make="A"),
                              "perceptron_epoch": PERCEPTRON_OK.replace("return w,", "return w.to_sparse(),")}, None,
                             {SE: "failed", "mlp_backward": "failed", "adam_step": "failed", "perceptron_epoch": "failed"},
                             {SE: "calls torch.autograd.grad", "mlp_backward": "calls torch.autograd.grad",
                              "adam_step": "calls torch.optim.Adam",
                              "perceptron_epoch": "a sparse_coo tensor; return an ordinary (dense) tensor"}, "losing the report"),
    "patched_library_and_raises": sub({"adam_step": ADAM + "    return theta, m, v",
                                       "perceptron_epoch": PERCEPTRON + "    raise ValueError('my bug')"},
                                      {"adam_step": ["import numpy as np\nnp.allclose = np.array_equal = lambda *a, **k: True\n"
                                                     "np.testing.assert_allclose = lambda *a, **k: None\n"
                                                     "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
                                                     "torch.testing.assert_close = lambda *a, **k: None\n"
                                                     "torch.Tensor.__eq__ = lambda self, other: torch.tensor(True)\n"
                                                     "torch.Tensor.numpy = lambda self: None\n"
                                                     "torch.save = lambda *a, **k: None\ntorch.load = lambda *a, **k: None"]},
                                      {"adam_step": "failed", "perceptron_epoch": "error"},
                                      {"adam_step": "relative error", "perceptron_epoch": "raised ValueError: my bug"}),
    "global_state_and_stderr": sub({SE: "import sys\nimport warnings\n\n\n" + CE_OK.replace(
                                        "    p =", "    warnings.warn('deprecated')\n    print('note', file=sys.stderr)\n    p =")},
                                   {SE: ["print('a warning on stderr', file=sys.stderr)",
                                         "import numpy as np\ntorch.manual_seed(123)\nnp.random.seed(1)\n"
                                         "torch.set_default_dtype(torch.float64)\ntorch.set_grad_enabled(False)"]}),
    "exits": sub({"perceptron_epoch": PERCEPTRON + "    import os\n    os._exit(1)"}, {SE: ["import os\nos._exit(1)"]},
                 {"perceptron_epoch": "error"},
                 {"perceptron_epoch": "your function's process died on case 1",
                  "notes": "(`import os`) killed the notebook; the notebook was run again without it"}),
    "obfuscated": sub({SE: "import sys\n\n\n" + CE_VIA_AUTOGRAD.replace("    x =", "    sys.setprofile(None)\n    x =")},
                      {SE: [OBFUSCATED, "x = " + "-" * 100_000 + "1"]}, ALL_REVIEW,
                      {"flags": ["sys.setprofile (cell", "import ctypes", "_execution_engine", "globals()", "sys.modules",
                                 "getattr with a computed name", "cell 7 that cannot be analysed (MemoryError)"]},
                      "bypassing banned calls"),
    # --- issue 9's attack classes ---------------------------------------------------------------------
    "steal_solutions": sub(None, {SE: [STEAL]}, dict.fromkeys(EXERCISES, "not attempted"),
                           {SE: "still raises NotImplementedError"}, "stealing the answers", solved=False),
    "steal_reference_and_thread": sub({"perceptron_epoch": REFERENCE, SE: THREAD_EARLIER}, None,
                                      {"perceptron_epoch": "failed", SE: "error", "mlp_backward": "error"},
                                      {"perceptron_epoch": "calls the exercise's reference solution", SE: "raised Empty"},
                                      "bypassing banned calls"),
    "bypass_engine": sub({SE: ENGINE_RUNTIME, "perceptron_epoch": PERCEPTRON + "    return w, b, 0"},
                         {"perceptron_epoch": [FALSIFY]},
                         {SE: "failed", "mlp_backward": "failed", "perceptron_epoch": "failed"},
                         {SE: "the autograd engine (backward)", "perceptron_epoch": "relative error"},
                         "falsifying the record"),
    "untraced_helpers": sub({SE: UNTRACED}, None, {SE: "failed", "mlp_backward": "failed"},
                            {SE: "values wrong; worst got 0"}, "bypassing banned calls"),
    "write_everywhere": sub(None, {SE: [HARM]}, attack="harming classmates"),
    "daemon": sub(None, {SE: [DAEMON]}, phrases={"notes": "stopped before the grader's calls"},
                  attack="falsifying the record"),
    "resources": sub({"perceptron_epoch": HUGE}, {SE: [FILL, MEMORY, PRINT]}, {"perceptron_epoch": "failed"},
                     {"perceptron_epoch": "larger than the grader accepts"}, "exhausting the grader"),
    "fork_bomb": sub(None, {SE: [FORK]}, ALL_REVIEW, {"flags": ["os.fork"]}, "harming classmates"),
    "channel_flood": sub(None, {SE: [FLOOD]}, dict.fromkeys(EXERCISES, "error"), {"error": "protocol"},
                         "exhausting the grader", status="invalid"),
    "slow": sub({"adam_step": ADAM + UNINTERRUPTIBLE}, {SE: [SLEEPY] * 3 + [HUNG_CELL]}, dict.fromkeys(EXERCISES, "timeout"),
                {"notes": "time budget (60 s) ran out"}, "exhausting the grader"),
}
