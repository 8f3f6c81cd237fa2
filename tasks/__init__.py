"""Task families. Importing this package registers them; each module is one family,
its definition and source in its docstring."""

from tasks import adding, copy_memory, mnist  # noqa: F401  (registration side effect)
