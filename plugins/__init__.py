"""melrestore's built-in plugins.  Each module is an entry point in the ``melrestore``
group, loaded exactly like a third-party plugin."""
