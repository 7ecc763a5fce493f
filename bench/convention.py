"""The line every bench prints first (make bench), so that each states the
same convention for its ratios.  Python benches import header(); the shell
ones run this file: python3 bench/convention.py NAME WHAT."""
import sys

RATIO = "ratio = peer time / ours (higher is better for us)"


def header(name, what):
    print(f"== bench/{name}: {what}; {RATIO}; figures only, never asserted",
          flush=True)


if __name__ == "__main__":
    header(sys.argv[1], " ".join(sys.argv[2:]))
