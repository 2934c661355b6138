"""The five iDAW networks (PyTorch definitions in :mod:`realtime.nets.architectures`; see README.md here).

Nothing is imported here: importing torch costs seconds, and `idaw` builds its command line from this
package's CLI module. Import from :mod:`realtime.nets.architectures` directly.
"""
