"""The pipeline's thread pools run their work in the submitter's context: the source's log keys and the
deadline that bounds its AWS calls reach the threads that do the work."""

from __future__ import annotations

from contextvars import ContextVar

from reframe_pipeline.application.threads import ContextPool

_deadline: ContextVar[str | None] = ContextVar("deadline", default=None)


def test_work_sees_the_submitters_context_and_leaves_it_alone():
    with ContextPool(2) as pool:
        token = _deadline.set("this invocation's")
        try:
            submitted = pool.submit(_deadline.get)
            mapped = list(pool.map(lambda _: _deadline.get(), range(3)))
        finally:
            _deadline.reset(token)
        after = pool.submit(_deadline.get)  # a later submitter's context, not the earlier one's
        assert submitted.result() == "this invocation's"
        assert mapped == ["this invocation's"] * 3
        assert after.result() is None
