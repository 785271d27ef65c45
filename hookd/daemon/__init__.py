"""The daemon (`hookd run`): consume events, deliver them on a pool of threads, settle on the broker."""
