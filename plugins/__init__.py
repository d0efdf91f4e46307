"""melrestore's built-in plugins, each module an entry point loaded like a third-party plugin.

They are entry points of the ``melrestore`` group of melrestore's own distribution.
"""
