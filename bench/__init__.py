"""The benchmark harness of hookd (`make bench`); see bench/README.md."""
