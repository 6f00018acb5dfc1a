"""Transactions of the controller: the lock, all-or-nothing calls, and the errors of a shared store.

``@transaction`` wraps every public call that writes (``Controller.apply`` / ``delete`` /
``reconcile``, every ``Operator`` call); ``@reading`` every call that only reads. Both take the
controller's re-entrant lock, so the controller may be shared between threads: calls run one at
a time, and a reader never sees half a transaction. A call made from inside a transaction (for
example ``ops.create_namespace`` returning ``get(...)``) is part of it.

A transaction runs ``Controller._begin`` (catch up with the store, open the transaction), the
call, then ``Controller._commit``. An exception anywhere in between, ``KeyboardInterrupt`` and
``MemoryError`` included, runs ``Controller._rollback``: the state is exactly what it was before
the call. ``Stale`` (another process committed first) rolls back and runs the call again on
the new state, up to ``COMMIT_ATTEMPTS`` times.

Writing a new transactional method (a decorated method of the Controller): inside it,

- every workload row it changes gets ``rows.rv[idx] = st.bump()`` (the commit finds changed
  rows by that version and writes their objects; ``st.unbind(idx)`` gives capacity back);
- before changing a record in place (``DeploymentRecord``, ``NamespaceRecord``, ...), call
  ``st.save(record)`` (so a rollback puts it back), and ``st.touch(kind, namespace, name)``
  for every object created, changed or deleted;
- events go through ``st.event(...)``; they are committed with the rest.
"""
from __future__ import annotations

import functools


class Conflict(ValueError):
    """An update was based on a stale ``resourceVersion`` (Kubernetes' 409 Conflict)."""

    code = 409


class Gone(ValueError):
    """A ``watch`` asked for history older than the store keeps (Kubernetes' 410 Gone, "too
    old resource version"): list again and watch from the list's revision."""

    code = 410


class NotLeader(RuntimeError):
    """A fenced write was refused: this controller no longer holds the leader lease."""


class Stale(Exception):
    """Another process committed since this one read the store (internal: retried)."""


def _controller(obj):
    return getattr(obj, "_controller", obj)


def transaction(method):
    """Run ``method`` as one all-or-nothing transaction of the controller."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        ctl = _controller(self)
        with ctl._lock:
            if ctl._depth:            # already inside a transaction: part of it
                return method(self, *args, **kwargs)
            attempts = ctl._commit_attempts
            for attempt in range(attempts):
                undo = ctl._begin()
                ctl._depth += 1
                try:
                    out = method(self, *args, **kwargs)
                    ctl._commit()
                    return out
                except Stale:
                    ctl._rollback(undo)
                except BaseException:
                    ctl._rollback(undo)
                    raise
                finally:
                    ctl._depth -= 1
            raise Conflict(f"{method.__name__}: the store changed under {attempts} attempts in a "
                           f"row; try again")

    return wrapper


def reading(method):
    """Run ``method`` under the controller's lock, on state caught up with the store."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        ctl = _controller(self)
        with ctl._lock:
            if not ctl._depth:
                ctl._refresh()
            return method(self, *args, **kwargs)

    return wrapper
