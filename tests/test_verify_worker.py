"""The verifier's worker, attacked piece by piece (``autograder/verify_worker.py``'s seal).

Each attack is the code of an answer cell; the worker runs it as it runs a submission, under a
policy that forbids what a check of the course forbids (the course's NumPy references, the
answers of ``cnnlab.shapes``, the checks' own ``ref_*`` functions), and every attack must fail to
obtain a forbidden function's value. The seccomp filter is also tested on its own (no audit hook
in front of it), and so is the channel: plain data only, NumPy scalars kept as they are, a
malformed or forged reply is no verdict.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox, verifier
from autograder.verify_worker import ANSWERED, MAGIC, STARTED, dumps, loads, split_reply

REPO = Path(__file__).resolve().parent.parent

#: what the size exercises of notebook 01 forbid in their hidden tier
POLICY = {"forbid": ["numpy_ref", "scipy", "torch", "torch_ref"], "refuse": ["cnnlab.shapes"],
          "functions": ["cnnlab.checks.nb01:ref_shift_image"], "allow": []}


@pytest.fixture(scope="module")
def sb():
    """The sandbox where this machine has one (the worker's seal does not depend on it)."""
    try:
        return sandbox.probe()
    except Exception:  # noqa: BLE001 - no sandbox here: the worker runs unsandboxed, sealed all the same
        return None


def run(sb, answers, calls, policy=POLICY, seconds=10, total=120):
    calls = [c if isinstance(c, dict) else {"name": c, "args": [4, 8], "kwargs": {}} for c in calls]
    return verifier.run_worker(["import numpy as np", "from cnnlab import shapes"], answers, calls,
                               seconds=seconds, total_seconds=total, memory_mb=2048, sb=sb, policy=policy)


ATTACKS = {
    # an alias taken before any call, and the module attribute
    "alias": "from cnnlab.shapes import fc_params as _fc\ndef alias(a, b):\n    return _fc(a, b)",
    "module_attribute": "import cnnlab.shapes\ndef module_attribute(a, b):\n    return cnnlab.shapes.fc_params(a, b)",
    # a function rebuilt from the trap's code is a trap; the original is gone
    "rebuilt": ("import types, cnnlab.shapes as S\n"
                "def rebuilt(a, b):\n"
                "    f = types.FunctionType(S.fc_params.__code__, S.fc_params.__globals__)\n"
                "    return f(a, b)"),
    # every code object within reach (other functions, wrapped ones, closures) is a trap too
    "code_restored": ("import types, cnnlab.shapes as S\n"
                      "def code_restored(a, b):\n"
                      "    f, seen = S.fc_params, []\n"
                      "    for v in list(vars(S).values()):\n"
                      "        for g in [v, getattr(v, '__wrapped__', None), *[c.cell_contents for c in getattr(v, '__closure__', None) or ()]]:\n"
                      "            if isinstance(g, types.FunctionType) and g.__code__.co_name == 'fc_params':\n"
                      "                f.__code__ = g.__code__\n"
                      "                try:\n"
                      "                    return f(a, b)\n"
                      "                except BaseException:\n"
                      "                    seen.append(g)\n"
                      "    return -len(seen)"),
    # a thread, a raw thread, a process, a fresh interpreter
    "thread": ("import threading, cnnlab.shapes as S\n"
               "def thread(a, b):\n"
               "    out = []\n"
               "    t = threading.Thread(target=lambda: out.append(S.fc_params(a, b)))\n"
               "    t.start(); t.join()\n"
               "    return out[0]"),
    "raw_thread": ("import _thread, time, cnnlab.shapes as S\n"
                   "def raw_thread(a, b):\n"
                   "    out = []\n"
                   "    _thread.start_new_thread(lambda: out.append(S.fc_params(a, b)), ())\n"
                   "    time.sleep(0.5)\n"
                   "    return out[0]"),
    "fork": ("import os\n"
             "def fork(a, b):\n"
             "    r, w = os.pipe()\n"
             "    if os.fork() == 0:\n"
             "        os.write(w, b'x'); os._exit(0)\n"
             "    return len(os.read(r, 1))"),
    "subprocess": ("import subprocess, sys\n"
                   "def subprocess_(a, b):\n"
                   "    code = 'from cnnlab.shapes import fc_params; print(fc_params(%d, %d))' % (a, b)\n"
                   "    return int(subprocess.check_output([sys.executable, '-c', code]))"),
    "exec_fresh": ("import os, sys\n"
                   "def exec_fresh(a, b):\n"
                   "    os.execv(sys.executable, [sys.executable, '-c', 'import os; os.write(3, b\"forged\")'])"),
    "ctypes_exec": ("import ctypes\n"
                    "def ctypes_exec(a, b):\n"
                    "    return ctypes.CDLL(None).execv(b'/bin/true', None)"),
    # the course's code loaded again, or read
    "reload": ("import importlib, cnnlab.shapes as S\n"
               "def reload(a, b):\n"
               "    return importlib.reload(S).fc_params(a, b)"),
    "fresh_import": ("import sys\n"
                     "def fresh_import(a, b):\n"
                     "    sys.modules.pop('cnnlab.shapes')\n"
                     "    import cnnlab.shapes\n"
                     "    return cnnlab.shapes.fc_params(a, b)"),
    "fresh_copy": ("import importlib.util, cnnlab.shapes as S\n"
                   "def fresh_copy(a, b):\n"
                   "    spec = importlib.util.spec_from_file_location('copy_of_shapes', S.__file__)\n"
                   "    m = importlib.util.module_from_spec(spec)\n"
                   "    spec.loader.exec_module(m)\n"
                   "    return m.fc_params(a, b)"),
    "source_exec": ("import cnnlab.shapes as S\n"
                    "def source_exec(a, b):\n"
                    "    ns = {'__name__': 'x'}\n"
                    "    exec(open(S.__file__).read(), ns)\n"
                    "    return ns['fc_params'](a, b)"),
    "other_notebook": ("def other_notebook(a, b):\n"
                       "    from cnnlab.checks import nb04\n"
                       "    return nb04.ref_count_conv_macs((1, 1, 1), 1, 1, 1)"),
    "check_reference": ("from cnnlab.checks import nb01\n"
                        "def check_reference(a, b):\n"
                        "    return int(nb01.ref_shift_image(np.ones((4, 4)), 1, 0).sum())"),
    # memory, objects, frames
    "gc_walk": ("import gc\n"
                "def gc_walk(a, b):\n"
                "    codes = [o for o in gc.get_objects() if type(o).__name__ == 'code' and o.co_name == 'fc_params']\n"
                "    return len(codes)"),
    "proc_mem": "def proc_mem(a, b):\n    return len(open('/proc/self/mem', 'rb').read(1))",
    "frames": ("import sys\n"
               "def frames(a, b):\n"
               "    f, seen = sys._getframe(), 0\n"
               "    while f is not None:\n"
               "        for v in list(f.f_locals.values()):\n"
               "            if callable(v) and getattr(v, '__name__', '') == 'fc_params':\n"
               "                return v(a, b)\n"
               "        f, seen = f.f_back, seen + 1\n"
               "    return -seen"),
    "torch": "def torch_(a, b):\n    import torch\n    return int(torch.tensor(a).item())",
    "ctypes_read": ("import ctypes, cnnlab.shapes as S\n"
                    "def ctypes_read(a, b):\n"
                    "    libc = ctypes.CDLL(None)\n"
                    "    fd = libc.open(S.__file__.encode(), 0)\n"
                    "    return fd"),
    "compiled_module": ("import os, shutil, sys, math, tempfile\n"
                        "def compiled_module(a, b):\n"
                        "    base, where = os.path.basename(math.__file__), tempfile.mkdtemp()\n"
                        "    try:\n"
                        "        shutil.copy(math.__file__, os.path.join(where, 'evil' + base[base.index('.'):]))\n"
                        "        sys.path.insert(0, where)\n"
                        "        import evil\n"
                        "        return 1\n"
                        "    finally:\n"
                        "        shutil.rmtree(where)"),
}


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_every_attack_on_the_seal_fails(sb):
    answers = list(ATTACKS.values()) + ["def honest(a, b):\n    return (a + 1) * b"]
    names = [src.split("def ", 1)[1].split("(", 1)[0] for src in answers]
    replies = run(sb, answers, names)
    got = dict(zip(names, replies))
    assert got["honest"] == {"ok": (4 + 1) * 8}
    for name, reply in got.items():
        if name == "honest":
            continue
        value = reply.get("ok")
        assert value is None or value in (0, -1) or (isinstance(value, int) and value < 0), (name, reply)
        assert value != (4 + 1) * 8 and value != (4 + 1) * 8 + 1000, (name, reply)
    assert "cnnlab.shapes.fc_params" in got["alias"]["called"][0]
    assert "cnnlab.shapes.fc_params" in got["module_attribute"]["called"][0]
    assert "cnnlab.shapes.fc_params" in got["rebuilt"]["called"][0]
    assert got["code_restored"]["ok"] < 0 and "cnnlab.shapes.fc_params" in got["code_restored"]["called"][0]
    for name in ("thread", "raw_thread"):   # refused by the filter; without one, the trap holds in any thread
        assert ("can't start new thread" in got[name].get("message", "")
                or any("fc_params" in c for c in got[name].get("called", []))), (name, got[name])
    for name in ("fork", "subprocess_", "exec_fresh", "ctypes_exec", "reload", "fresh_import", "fresh_copy",
                 "source_exec", "other_notebook", "gc_walk", "proc_mem", "torch_", "ctypes_read", "compiled_module"):
        assert got[name].get("raised") == "builtins.PermissionError", (name, got[name])
        assert got[name]["refused"], (name, got[name])
    assert "ref_shift_image" in got["check_reference"]["called"][0]
    assert got["frames"]["ok"] < 0      # frames are no way back to an original: there is none


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_a_second_worker_run_is_as_sealed_as_the_first(sb):
    """Nothing an attack did persists: a fresh worker for the next notebook."""
    replies = run(sb, [ATTACKS["alias"]], ["alias"])
    assert "called" in replies[0] and "ok" not in replies[0]


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_an_installed_library_may_still_load_its_own_compiled_code(sb):
    """Where the policy allows torch (the toy's public check), importing it works in a sealed worker."""
    pytest.importorskip("torch")
    answers = ["import torch\ndef f(a, b):\n    return int(torch.tensor([a, b]).sum().item())"]
    (reply,) = run(sb, answers, ["f"], policy={})
    assert reply == {"ok": 12}, reply


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_allowed_functions_run_with_what_they_need_and_nothing_else(sb):
    """nb07's exercises may use the course's layers (conv_forward calls numpy_ref's internals):
    those run; another reference of the same package stays trapped."""
    policy = {"forbid": ["numpy_ref", "scipy", "torch", "torch_ref"], "refuse": [],
              "functions": ["cnnlab.checks.nb07:ref_lenet_forward"],
              "allow": ["cnnlab.numpy_ref.conv:conv_forward"]}
    answers = ["from cnnlab.numpy_ref import conv_forward, conv_backward, max_pool_forward\n"
               "from cnnlab.checks.nb07 import ref_lenet_forward\n"
               "def uses_layer(x, w):\n    return conv_forward(x, w, np.zeros(w.shape[0]))[0]\n"
               "def other_layer(x, w):\n    return max_pool_forward(x, 2, 2)[0]\n"
               "def reference(x, w):\n    return ref_lenet_forward(x, {})[0]"]
    x, w = np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3))
    calls = [{"name": n, "args": [x, w], "kwargs": {}} for n in ("uses_layer", "other_layer", "reference")]
    replies = run(sb, answers, calls, policy=policy)
    assert replies[0]["ok"].shape == (1, 2, 2, 2) and float(replies[0]["ok"][0, 0, 0, 0]) == 9.0
    assert "max_pool_forward" in replies[1]["called"][0]
    assert "ref_lenet_forward" in replies[2]["called"][0]


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_worker_looks_like_the_kernel_where_cheap(sb):
    answers = ["import os, sys\n"
               "def looks(a, b):\n"
               "    return [sys.argv[0], os.environ.get('NBGRADER_EXECUTION'), sys.modules['__main__'].looks is looks]"]
    (reply,) = run(sb, answers, ["looks"])
    assert reply["ok"] == [sandbox.LIB + "/cnnlab_kernel.py", "autograde", True]


def test_seccomp_filter_alone_refuses_threads_processes_and_exec():
    """The filter, with no audit hook in front of it: the kernel refuses clone, fork and execve."""
    code = textwrap.dedent('''
        import os, sys, threading, _thread
        sys.path.insert(0, %r)
        import verify_worker
        print(verify_worker._seccomp())
        for name, attempt in (("thread", lambda: threading.Thread(target=print).start()),
                              ("raw thread", lambda: _thread.start_new_thread(print, ())),
                              ("fork", os.fork),
                              ("exec", lambda: os.execv("/bin/true", ["true"])),
                              ("spawn", lambda: os.posix_spawn("/bin/true", ["true"], {}))):
            try:
                attempt()
                print(name, "ran")
            except (OSError, RuntimeError) as exc:
                print(name, "refused", type(exc).__name__)
    ''' % str(REPO / "autograder"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = out.stdout.split("\n")
    if lines[0] != "on":
        pytest.skip(f"no seccomp filter on this machine: {lines[0]} {out.stderr[-300:]}")
    assert all(" refused " in ln for ln in lines[1:] if ln), out.stdout + out.stderr


# ----------------------------------------------------------------------------- the channel

def test_numpy_scalars_and_dtypes_are_plain_data_and_keep_their_type():
    value = [np.int64(5), np.float32(1.5), np.bool_(True), np.array(3), np.dtype("float32"), 7, 2.5, True]
    back = loads(dumps(value))
    assert [type(v) for v in back] == [np.int64, np.float32, np.bool_, np.ndarray, type(np.dtype("float32")),
                                       int, float, bool]
    assert back[0] == 5 and back[3].shape == () and back[4] == np.float32


def test_subclasses_of_plain_types_arrive_as_plain_types():
    class Always(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    class Big(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    back = loads(dumps([Always("nonsense"), Big(3)]))
    assert type(back[0]) is str and back[0] != "29x29x32"
    assert type(back[1]) is int and back[1] != 4


@pytest.mark.parametrize("bad", [
    b"", b"\x00" * 7, dumps({"calls": []}) + b"trailing", dumps({"calls": []})[:-1],
    b'\x0e\x00\x00\x00\x00\x00\x00\x00{"__dict__":5}\x00\x00\x00\x00\x00\x00\x00\x00',
    b'\x10\x00\x00\x00\x00\x00\x00\x00{"__nd__": 9999}\x00\x00\x00\x00\x00\x00\x00\x00',
    b'\x18\x00\x00\x00\x00\x00\x00\x00{"__fn__": "os:system"}\x00\x00\x00\x00\x00\x00\x00\x00',
    b'\x08\x00\x00\x00\x00\x00\x00\x00' + b"[" * 4 + b'\x00' * 8,
    b'\x02\x00\x00\x00\x00\x00\x00\x00' + b"[" * 2 + b'\x00' * 8,
    b'\x14\x00\x00\x00\x00\x00\x00\x00{"__scalar__": "x"} \x00\x00\x00\x00\x00\x00\x00\x00',
])
def test_a_malformed_reply_is_a_value_error_never_a_crash(bad):
    with pytest.raises(ValueError):
        loads(bad)


def test_a_deeply_nested_reply_is_a_value_error():
    deep = b"[" * 100_000 + b"]" * 100_000
    data = len(deep).to_bytes(8, "little") + deep + (0).to_bytes(8, "little")
    with pytest.raises(ValueError):
        loads(data)


def test_a_reply_never_names_a_function():
    from cnnlab.checks import nb05

    request = dumps({"pool": nb05.max_pool_2x2}, functions=True)
    assert loads(request, functions=True)["pool"] is nb05.max_pool_2x2
    with pytest.raises(ValueError):
        loads(request)
    with pytest.raises(TypeError):
        dumps({"f": os.system}, functions=True)


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_a_forged_or_broken_reply_is_no_verdict_and_not_an_infrastructure_failure(sb):
    forge = ("import os\n"
             "for fd in range(3, 64):\n"
             "    try:\n"
             f"        os.write(fd, {dumps({'calls': [{'ok': 40}]})!r} + b'junk')\n"
             "    except OSError:\n"
             "        pass\n"
             "os._exit(0)")
    with pytest.raises(verifier.WorkerFailed) as info:
        run(sb, [forge], ["f"])
    assert not info.value.infra
    with pytest.raises(verifier.WorkerFailed) as info:
        run(sb, ["import os\nos._exit(3)"], ["f"])
    assert not info.value.infra
    with pytest.raises(verifier.WorkerFailed) as info:     # a module-level loop: the total limit
        run(sb, ["while True:\n    pass"], ["f"], total=5)
    assert not info.value.infra and "within 5 s" in str(info.value)


def test_a_worker_that_never_starts_is_an_infrastructure_failure(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(verifier.WorkerFailed) as info:
        run(None, ["def f(a, b):\n    return 1"], ["f"])
    assert info.value.infra


@pytest.mark.sandbox   # runs the verifier's worker in a sandbox
def test_a_worker_that_dies_in_an_answer_says_which_one(sb):
    with pytest.raises(verifier.WorkerFailed) as info:
        run(sb, ["def f(a, b):\n    return 1", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "x = 1"], ["f"])
    assert info.value.crashed_at == 1 and not info.value.infra
    assert str(info.value) == "the submission's code ended the checking process (signal SIGSEGV)"
    assert run(sb, ["def f(a, b):\n    return 1", "x = 1"], ["f"])[0] == {"ok": 1}
    assert split_reply(STARTED * 2 + ANSWERED + b"data") == (2, True, b"data")
    assert split_reply(STARTED * 2) == (2, False, b"")


def test_magic_comes_before_any_student_code():
    """The student's code cannot write before the worker has said it is sealed."""
    r, w = os.pipe()
    req = dumps({"prelude": [], "answers": [f"import os\nos.write({w}, b'first')"],
                 "calls": [], "policy": {}}, functions=True)
    subprocess.run([sys.executable, str(REPO / "autograder" / "verify_worker.py"), "--fd", str(w)],
                   input=req, pass_fds=(w,), capture_output=True, timeout=60)
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    assert data.startswith(MAGIC + STARTED + b"first")


def _serve(worker: Path, request: dict, tmp: Path) -> dict:
    r, w = os.pipe()
    subprocess.run([sys.executable, str(worker), "--fd", str(w)], input=dumps(request, functions=True),
                   pass_fds=(w,), capture_output=True, timeout=120, env=dict(os.environ, TMPDIR=str(tmp)))
    os.close(w)
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    assert data.startswith(MAGIC)
    return loads(split_reply(data[len(MAGIC):])[2])


@pytest.mark.parametrize("weakened", ["nothing", "audit", "audit and seccomp"])
def test_a_fresh_interpreter_would_forge_a_perfect_reply_if_exec_were_allowed(tmp_path, weakened):
    """The attack is real: with ``exec`` allowed (no audit refusal, no seccomp filter), a fresh
    interpreter with no traps writes the references' answers, well formed, on the worker's pipe
    and every one is confirmed. Either defence alone stops it."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from test_autograder_adversarial import EXEC_FRESH
    finally:
        sys.path.remove(str(REPO / "tests"))
    from cnnlab.checks import nb01

    source = (REPO / "autograder" / "verify_worker.py").read_text()
    if "audit" in weakened:
        source = source.replace('"os.exec", ', "")
    if "seccomp" in weakened:    # (and the kernel's file rule, which stops the fresh interpreter's imports too)
        source = source.replace('state = {"seccomp": _seccomp(),', 'state = {"seccomp": "off",')
        source = source.replace('state["landlock"] = _landlock(course_dir, sealed_file)', 'state["landlock"] = "off"')
    worker = tmp_path / "worker.py"
    worker.write_text(source)
    ex = nb01.NOTEBOOK["fc_params"]
    conf = ex.confirmation("hidden")
    calls = [{"name": "fc_params", "args": list(c.args), "kwargs": dict(c.kwargs), "seconds": 20} for c in conf.cases]
    attack = EXEC_FRESH.replace("IN_VERIFIER", "True") + "\ndef fc_params(n_in, n_out, bias=True):\n    return 0\n"
    reply = _serve(worker, {"prelude": [], "answers": [attack], "calls": calls, "policy": verifier._policy(conf)},
                   tmp_path)
    verdicts = [ex.verify(c.get("ok"), case) for c, case in zip(reply["calls"], conf.cases)]
    if weakened == "audit" and reply["sealed"]["seccomp"] != "on":
        pytest.skip(f"no seccomp filter on this machine: {reply['sealed']['seccomp']}")
    if weakened == "audit and seccomp":
        assert verdicts == [None] * len(conf.cases), reply      # forged, and confirmed
    else:
        assert all(v is not None for v in verdicts), reply        # the exec was refused: the wrong answer stays
        assert reply["calls"][0]["raised"] == "builtins.NameError"
