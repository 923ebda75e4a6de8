"""The gate scheduler: choice semantics, determinism, the trio reference executor."""

import os
import random
import subprocess
import sys
import textwrap

import pytest
import trio

from fuzz.runtime.choosers import ReplayChooser
from fuzz.runtime.executor import TrioExecutor, execute
from fuzz.program.generate import random_program
from fuzz.runtime.scheduler import Scheduler
from fuzz.runtime.drivers import StepDriver
from model.kernel import Kernel
from tests.helpers import anon, op, prog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _order(choices, ntasks=3, steps=3):
    """Which task ran each step, for toy tasks that each take ``steps`` points."""
    sched = Scheduler(ReplayChooser(choices))
    StepDriver(sched)
    seen = []

    def task(name):
        async def body():
            for _ in range(steps):
                await sched.point("toy:step")
                seen.append(name)
        return body

    for i in range(ntasks):
        sched.spawn(str(i), task(str(i)))
    sched.driver.run()
    return "".join(seen), sched.schedule()


def test_exhausted_schedule_means_no_preemption():
    assert _order(())[0] == "000111222"


def test_choice_is_relative_to_the_current_task():
    # 1 at task 0's first point = the next runnable task in rotation (task 1); the
    # exhausted schedule then keeps each task running until it finishes
    order, used = _order((1,))
    assert order == "111222000"
    assert used == (1,)
    assert _order((2,))[0] == "222000111"
    assert _order((0, 0, 1))[0] == "001112220"


def test_choice_stable_under_deletion_of_a_trailing_suffix():
    order, used = _order((0, 2, 0, 0, 1))
    shorter, _ = _order(used)
    assert shorter == order


def test_schedule_records_effective_choices():
    _, used = _order((7, 7, 7))          # reduced modulo the runnable count
    assert all(c < 3 for c in used)


def test_single_runnable_task_consumes_no_choice():
    order, used = _order((1, 1, 1), ntasks=1)
    assert order == "000" and used == ()


def test_fault_injection_draws_from_the_same_stream_only_when_enabled():
    p = prog([anon(0, populate="none")], (0, [op("write", 0)]))
    assert execute(p.with_schedule((1,)), Kernel).verdict == "ok"
    injected = execute(type(p)(p.mappings, p.threads, (1,), True), Kernel)
    events = [e for s in injected.trace.steps for e in s.events if e[0] == "inject"]
    assert events and injected.verdict == "ok"
    rets = [e for s in injected.trace.steps for e in s.events if e[0] == "ret"]
    assert rets[0][2] == "OOM"


def _trace_in_subprocess(hashseed: str) -> str:
    code = textwrap.dedent("""
        import random
        from fuzz.program.generate import random_program
        from fuzz.runtime.executor import execute
        from model.kernel import Kernel
        out = []
        for seed in (3, 17, 99):
            p = random_program(random.Random(seed), max_threads=3, schedule_len=60)
            out.append(execute(p, Kernel).trace.render_text())
        print("".join(out), end="")
    """)
    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], env=env, check=True,
                          capture_output=True, text=True).stdout


def test_traces_are_identical_across_processes_and_hash_seeds():
    a = _trace_in_subprocess("1")
    b = _trace_in_subprocess("4242")
    assert a and a == b


@pytest.fixture(scope="module")
def trio_executor():
    return TrioExecutor()


def test_trio_and_step_executors_agree(trio_executor):
    for seed in range(60):
        p = random_program(random.Random(seed), max_threads=4, max_ops=10, schedule_len=80)
        a = execute(p, Kernel)
        b = trio_executor.run(p, Kernel)
        assert a.verdict == b.verdict, seed
        assert a.trace.render_text() == b.trace.render_text(), seed


def test_trio_executor_reports_violations(trio_executor):
    from tests.test_oracles import ForkLeavesParentWritable
    p = prog([anon(0)], (0, [op("fork", 1)]))
    outcome = trio_executor.run(p, ForkLeavesParentWritable)
    assert outcome.verdict == "violation" and outcome.oracle == "writable-shared"


def test_gate_guard_catches_a_task_running_outside_the_gate(trio_executor):
    class StrayWakeup(Kernel):
        """Wakes another parked thread behind the gate's back, then yields to trio."""

        async def op_read(self, thread, va):
            for task in self.sched.tasks:
                data = task.driver_data
                if task is not self.sched.current and data is not None and data.parked:
                    data.parked = False
                    trio.lowlevel.reschedule(data.trio_task)
                    break
            # two checkpoints: the woken thread steps in the trio batch while this one
            # is still the chosen task, whatever order trio runs the batch in
            await trio.sleep(0)
            await trio.sleep(0)
            return await super().op_read(thread, va)

    p = prog([anon(0)], (0, [op("write", 0), op("read", 0)]), (0, [op("write", 0)]),
             schedule=(1, 1))
    outcome = trio_executor.run(p, StrayWakeup)
    assert outcome.verdict == "model-error", outcome.trace.render_text()
    assert "outside the gate" in outcome.error


def test_trio_executor_fails_a_task_blocked_outside_the_gate(trio_executor):
    class BlocksInTrio(Kernel):
        async def op_read(self, thread, va):
            await trio.Event().wait()    # never set: would hang without the watchdog
            return 0

    p = prog([anon(0)], (0, [op("read", 0)]))
    outcome = trio_executor.run(p, BlocksInTrio, hang_timeout=0.5)
    assert outcome.verdict == "model-error"
    assert "outside the gate" in outcome.error
    assert outcome.status == "model-error"


def test_deadlock_and_stuck_user_waits_are_different():
    stuck = execute(prog([anon(0)], (0, [op("wait", 3)])), Kernel)
    assert stuck.verdict == "ok" and stuck.stuck


def test_the_scheduler_is_what_the_model_expects():
    """fuzz's Scheduler provides every member of the model's Sched protocol."""
    from model.sched import Sched
    assert isinstance(Scheduler(ReplayChooser()), Sched)


@pytest.mark.parametrize("field, index, text", [
    ("mapcount", None, "mapcount"), ("pte", 5, "pte[5]"), ("tlb", 0, "tlb[0]"),
    ("pin", 3, "pin#3"), ("pin.associated", 1, "pin#1.associated"),
    ("vma.vm_flags", 4, "vma[4].vm_flags"), ("vma", (4, 8), "vma[4-8]"),
    ("foll_flags.FOLL_WRITE", None, "foll_flags.FOLL_WRITE"),
])
def test_change_fields_print_as_the_trace_spells_them(field, index, text):
    from model.changes import field_text
    assert field_text(field, index) == text


def test_changes_are_records_with_an_index():
    """A PTE change names its table, field "pte" and the address: nothing parses text."""
    p = prog([anon(0, 2)], (0, [op("write", 1)]))
    steps = execute(p, Kernel).trace.steps
    ptes = [(f, i) for s in steps for _o, f, i, _a, _b in s.changes if f == "pte"]
    assert ("pte", 1) in ptes and all(isinstance(i, int) for _f, i in ptes)
