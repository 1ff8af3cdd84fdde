"""The Cirrus configuration language, as pure steps from a node tree to a ``BuildSpec``.

The pipeline (each step one module, each testable without I/O):

* ``nodes``: the tree every source produces (YAML through ``adapters.cirrus_config``, Starlark
  through its adapter), with line and column;
* ``expand``: ``$VAR`` / ``${VAR}`` expansion with Cirrus's rules;
* ``conditions``: Cirrus's boolean expressions (``only_if``, ``skip``, ...), ``changesInclude``;
* ``instances``: an instance (``container:``, ``macos_instance:``, ...) to worker requirements;
* ``matrix``, ``tasks``, ``commands``: the tasks of a build and their wire commands.
"""
