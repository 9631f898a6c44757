"""A method that kills its process (os.abort) and one checked after it: the checker must go on."""

import os

from harness.api import MethodSpec, hookimpl


def abort(ctx):
    os.abort()


def identity(ctx):
    return ctx.module


@hookimpl
def harness_register_methods(register):
    register(MethodSpec(name="aborter", apply=abort))
    register(MethodSpec(name="after-crash", apply=identity))
