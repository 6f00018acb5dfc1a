"""The desired-state controller (store, reconcile loop, namespaces, quotas, host lifecycle).

It is a thin pure-Python layer over ``numasched.place``: one kernel call per reconcile.
"""
